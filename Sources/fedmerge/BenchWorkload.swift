// `fedmerge bench workload NAME`: FedMerge's side of scripts/bench/torch_side_by_side.py — runs
// one workload (fine-tuning step, Gram pass, diagonal Fisher, a merge) a few times in this
// process, after loading everything it needs, and prints the wall time of each run as JSON on
// its last line. The script runs PyTorch's side of the same workload between these processes.

import ArgumentParser
import Foundation
import LinAlg
import Merge
import MergeIO
import Model

struct BenchWorkload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload",
        abstract: "Time one workload (step, gram, fisher, merge) in this process; prints {\"seconds\": [...]} on its last line.",
        discussion: "Driven by scripts/bench/torch_side_by_side.py, which runs PyTorch's side between these processes."
    )

    enum Name: String, ExpressibleByArgument, CaseIterable { case step, gram, fisher, merge }

    @Argument(help: "step | gram | fisher | merge") var name: Name
    @Option(help: "Model directory (step, gram, fisher).") var model: String?
    @Option(help: "Texts, one per line (gram, fisher): the same file PyTorch reads.") var texts: String?
    @Option(help: "Examples per batch (step, gram).") var batchSize = 16
    @Option(help: "Tokens per text (step: every position real; gram, fisher: truncation length).") var length = 128
    @Option(help: "Batches (gram) or examples (fisher) per run.") var count = 16
    @Option(help: "Merge: comma-separated model directories, each with its stats.safetensors.") var models: String?
    @Option(help: "Merge: method name.") var method = "regmean"
    @Option(help: "Merge: method parameters as a JSON object.") var parameters = "{}"
    @Option(help: "Timed runs after one warm-up (MaTS: no warm-up, it is minutes long).") var repeats = 3

    func run() throws {
        var seconds: [Double] = []
        var extra: [String: Any] = [:]
        func time(_ body: () throws -> Void) rethrows {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        switch name {
        case .step:
            let encoder = try ModelDirectory.load(try required(model, "--model"))
            var rng = SplitMix64(seed: 3)
            // Ids 1000..<29000 avoid special tokens; no padding.
            let ids = (0..<(batchSize * length)).map { _ in Int32(1000 + Int(rng.next() % 28000)) }
            let input = try EncoderInput(batchSize: batchSize, sequenceLength: length, inputIDs: ids,
                                         attentionMask: [Int32](repeating: 1, count: batchSize * length))
            let labels = (0..<batchSize).map { Int32($0 % 2) }
            let steps = TrainingSteps(model: encoder, options: TrainingOptions(), totalSteps: 1000)
            _ = try steps.step(input, targets: .classes(labels))
            for _ in 0..<repeats { try time { _ = try steps.step(input, targets: .classes(labels)) } }
        case .gram, .fisher:
            let directory = try required(model, "--model")
            let encoder = try ModelDirectory.load(directory)
            let tokenizer = try WordPieceTokenizer(vocabularyFile: directory + "/vocab.txt")
            let lines = try String(contentsOfFile: try required(texts, "--texts"), encoding: .utf8).split(separator: "\n").map(String.init)
            let data = LabeledDataset(examples: lines.map { LabeledExample(text: $0, labels: [0]) },
                                      labelNames: encoder.config.labels, isMultiLabel: false)
            var plan = StatisticsPlan()
            plan.batchSize = batchSize; plan.maxLength = length
            if name == .gram { plan.gramBatches = count } else { plan.gramBatches = 0; plan.fisherExamples = count }
            _ = try StatisticsRun.collect(model: encoder, tokenizer: tokenizer, data: data, plan: plan, showProgress: false)
            for _ in 0..<repeats {
                try time { _ = try StatisticsRun.collect(model: encoder, tokenizer: tokenizer, data: data, plan: plan, showProgress: false) }
            }
        case .merge:
            let directories = try required(models, "--models").split(separator: ",").map(String.init)
            guard let object = try JSONSerialization.jsonObject(with: Data(parameters.utf8)) as? [String: Any] else {
                throw ValidationError("--parameters \(parameters): not a JSON object")
            }
            var raw: [String: MergeValue] = [:]
            for (k, v) in object {
                if let s = v as? String { raw[k] = .string(s) } else if let n = v as? NSNumber { raw[k] = .number(n.doubleValue) } else {
                    throw ValidationError("--parameters: \(k) is neither a string nor a number")
                }
            }
            let chosen = try MethodRegistry.method(named: method)
            let validated = try chosen.validate(parameters: raw)
            let kinds = chosen.requiredStatistics(validated)
            let inputs = try directories.enumerated().map { i, d in
                (name: "m\(i)", tensors: try ModelFiles.loadModel(directory: d).tensors,
                 statistics: try ModelFiles.loadStatistics(path: d + "/stats.safetensors", model: d, kinds: kinds))
            }
            var report: MergeReport?
            func merge() throws {
                let accumulator = try chosen.makeAccumulator(parameters: raw)
                for m in inputs { try accumulator.add(model: m.tensors, statistics: m.statistics, weight: 1, name: m.name) }
                report = try accumulator.finish().report
            }
            // One warm-up like the other workloads (PyTorch's side runs every round in one warm
            // process; ours starts a process per round), except for MaTS, minutes long.
            if method != "mats" { try merge() }
            for _ in 0..<repeats { try time { try merge() } }
            if let report {
                let iterations = report.tensors.compactMap(\.iterations)
                if !iterations.isEmpty {
                    extra["cg_iterations_mean"] = Double(iterations.reduce(0, +)) / Double(iterations.count)
                    extra["cg_iterations_max"] = iterations.max()!
                    extra["cg_converged"] = report.tensors.filter { $0.converged == true }.count
                    extra["cg_systems"] = iterations.count
                    extra["cg"] = Dictionary(uniqueKeysWithValues: report.tensors.compactMap { e in
                        e.iterations.map { (e.name, "\($0) it, residual \(e.finalResidual ?? .nan)") }
                    })
                }
                extra["add_s"] = report.addSeconds
                extra["finish_s"] = report.finishSeconds
            }
        }
        extra["seconds"] = seconds
        print(String(decoding: try JSONSerialization.data(withJSONObject: extra, options: [.sortedKeys]), as: UTF8.self))
    }

    private func required(_ value: String?, _ flag: String) throws -> String {
        guard let value else { throw ValidationError("workload \(name.rawValue) needs \(flag)") }
        return value
    }
}
