// `fedmerge privacy-sweep CONFIG.yaml`: the privacy/accuracy trade-off of DP Grams (results/privacy).
// For every ε of the grid (and ε = ∞, the exact Grams) each member's statistics are collected
// with `gram_noise` at that ε, RegMean merges the members' fine-tuned models on them, the
// merged model is scored on every member's test split, and the layer-0 audit attacks one
// member's noisy Gram. Fine-tuned models, statistics and audits are cached in the workdir, so
// a re-run only computes what is missing (noise only touches statistics: the models are shared
// by every ε). It runs in one process — the same StatisticsRun and RegMean arithmetic the
// agents and the aggregator run, without the transport. Two settings: members of one task
// (CSV files, one shared head merged like every tensor) and members of different tasks (an
// experiment corpus each, its own label set; `heads: keep`, each member scored with its own head).

import Agent
import ArgumentParser
import AtomicIO
import DaemonSupport
import Experiment
import Foundation
import LinAlg
import Merge
import MergeIO
import Model
import Protocol
import SafeTensors

struct PrivacySweepConfig {
    /// A member's data: a sentiment CSV pair (label names negative/positive), or an experiment
    /// corpus read and split as `fedmerge experiment` splits it (its own label set).
    enum Source {
        case csv(train: String, test: String)
        case corpus(ExperimentConfig.Member)
    }
    struct Member { var name: String; var source: Source }
    var file: String
    /// What the members are, for the report ("3 VADER sentiment domains …").
    var title: String
    /// How the run was cut down from the full setting, quoted in the report.
    var reductions: String
    var baseModel: String
    var workdir: String
    var results: String
    var epochs: Int, learningRate: Double, batchSize: Int, maxLength: Int, seed: Int, maxExamples: Int
    var gramBatches: Int
    var delta: Double, clip: Double
    var epsilons: [Double]
    var alpha: Double
    /// "average": one head merged like every tensor; "keep": each member keeps its own head.
    var heads: String
    var evalMaxExamples: Int
    var auditMember: String
    var members: [Member]

    /// The exact Gram pass every member runs (noise is added per ε).
    var gramPlan: StatisticsPlan {
        var plan = StatisticsPlan()
        plan.gramBatches = gramBatches; plan.batchSize = batchSize; plan.maxLength = maxLength; plan.seed = UInt64(seed)
        return plan
    }

    static func load(file: String) throws -> PrivacySweepConfig {
        let top = try ConfigReader.load(file: file)
        try top.onlyKeys(["title", "reductions", "base_model", "workdir", "results", "train", "stats", "privacy", "alpha", "heads",
                          "eval_max_examples", "audit_member", "members"])
        let t = try top.section("train")
        try t.onlyKeys(["epochs", "lr", "batch_size", "max_len", "seed", "max_examples"])
        let s = try top.section("stats")
        try s.onlyKeys(["gram_batches"])
        let p = try top.section("privacy")
        try p.onlyKeys(["delta", "clip", "epsilons"])
        let epsilons = try p.strings("epsilons", help: "the finite ε values of the grid (ε = ∞ always runs)").map { text in
            guard let e = Double(text), e > 0, e.isFinite else {
                throw ConfigError.invalid(file: file, key: "privacy.epsilons", value: text, allowed: "positive finite numbers")
            }
            return e
        }
        let maxLength = try t.int("max_len", range: 3...512)
        let members = try top.sections("members").map { m in
            try m.onlyKeys(["name", "train", "test", "corpus", "input", "test_input"])
            let name = try m.string("name", help: "the member's name")
            guard PortableName.isAgentName(name) else {
                throw ConfigError.invalid(file: file, key: m.key("name"), value: "'\(name)'", allowed: PortableName.rule)
            }
            switch (m.has("train") || m.has("test"), m.has("corpus") || m.has("input")) {
            case (true, false):
                return Member(name: name, source: .csv(train: try m.path("train", help: "training CSV"), test: try m.path("test", help: "test CSV")))
            case (false, true):
                let corpus = try m.choice("corpus", ExperimentConfig.Member.corpora)
                return Member(name: name, source: .corpus(ExperimentConfig.Member(
                    name: name, title: name, corpus: corpus, input: try m.path("input", help: "the raw corpus file"),
                    testInput: try m.optionalPath("test_input"), maxLength: maxLength)))
            default:
                throw ConfigError.invalid(file: file, key: m.key("train"), value: "", allowed: "either train + test (CSV files) or corpus + input [+ test_input] (an experiment corpus)")
            }
        }
        let audit = try top.string("audit_member", help: "the member whose Grams the audit attacks")
        guard members.contains(where: { $0.name == audit }) else {
            throw ConfigError.invalid(file: file, key: "audit_member", value: audit, allowed: members.map(\.name).joined(separator: ", "))
        }
        return PrivacySweepConfig(
            file: file, title: try top.string("title", help: "what the members are, for the report"),
            reductions: try top.string("reductions", default: ""),
            baseModel: try top.path("base_model", help: "the pretrained model"),
            workdir: try top.path("workdir", help: "cache of models and statistics"), results: try top.path("results", help: "report directory"),
            epochs: try t.int("epochs", range: 1...100), learningRate: try t.double("lr", range: 1e-7...1), batchSize: try t.int("batch_size", range: 1...1024),
            maxLength: maxLength, seed: try t.int("seed", range: 0...Int(Int32.max)),
            maxExamples: try t.int("max_examples", range: 1...1_000_000), gramBatches: try s.int("gram_batches", range: 1...100_000),
            delta: try p.double("delta", range: 1e-12...0.1), clip: try p.double("clip", range: 1e-6...1e6), epsilons: epsilons,
            alpha: try top.double("alpha", default: 0.9, range: 0...1), heads: try top.choice("heads", ["average", "keep"], default: "average"),
            evalMaxExamples: try top.int("eval_max_examples", range: 1...1_000_000),
            auditMember: audit, members: members)
    }

    /// Member `m`'s training examples (the first `maxExamples` of a seeded shuffle) and test
    /// examples (at most `evalMaxExamples`).
    func data(_ m: Member) throws -> (train: LabeledDataset, test: LabeledDataset) {
        switch m.source {
        case let .csv(trainPath, testPath):
            var train = try LabeledDataset.load(path: trainPath, format: nil, textField: "text", labelField: "label", labelNames: ["negative", "positive"])
            train = train.shuffled(seed: UInt64(seed))
            train.examples = Array(train.examples.prefix(maxExamples))
            var test = try LabeledDataset.load(path: testPath, format: nil, textField: "text", labelField: "label", labelNames: ["negative", "positive"])
            test.examples = Array(test.examples.prefix(evalMaxExamples))
            return (train, test)
        case let .corpus(member):
            return try ExperimentData.trainAndTest(member, seed: UInt64(seed), trainSize: maxExamples, testSize: evalMaxExamples)
        }
    }
}

struct PrivacySweepRow: Codable {
    var epsilon: Double?                  // nil: ∞ (exact Grams)
    var method: String
    var accuracy: [String: Double]
    var macroF1: [String: Double]
    var meanAccuracy: Double?             // nil: a row that scores no model (the audit's prior)
    var meanMacroF1: Double?
    var solvePaths: [String: Int]?
    var audit: VocabularyScore?
    var auditExactMultiset: Bool?
    var noiseMultiplier: Double?
}

struct PrivacySweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "privacy-sweep",
        abstract: "Accuracy of RegMean and recall of the layer-0 audit over a grid of ε for DP Grams (writes report.md/json and tradeoff.svg).")

    @Argument(help: "The sweep config (configs/privacy/*.yaml).") var config: String

    func run() throws {
        let c = try PrivacySweepConfig.load(file: config)
        let started = Date()
        let tokenizer = try WordPieceTokenizer(vocabularyFile: c.baseModel + "/vocab.txt")
        var train: [String: LabeledDataset] = [:], test: [String: LabeledDataset] = [:]
        for m in c.members { (train[m.name], test[m.name]) = try c.data(m) }
        // 1. Fine-tuned models (cached).
        for m in c.members where !FileManager.default.fileExists(atPath: modelDir(c, m.name) + "/model.safetensors") {
            let base = try ModelDirectory.load(c.baseModel, seed: UInt64(c.seed))
            let model = BertEncoder(base: base, labels: train[m.name]!.labelNames, problemType: .singleLabel, pooling: .cls, seed: UInt64(c.seed))
            var options = TrainingOptions()
            options.epochs = c.epochs; options.learningRate = Float(c.learningRate); options.batchSize = c.batchSize
            options.maxLength = c.maxLength; options.seed = UInt64(c.seed)
            _ = try Trainer(model: model, tokenizer: tokenizer, options: options).train(train[m.name]!, progressLabel: "\(m.name) fine-tune")
            try ModelDirectory.save(model, to: modelDir(c, m.name), tokenizerSource: c.baseModel)
        }
        // A merged model scored on every member's test split; with heads kept, member m's test
        // runs on the merged encoder with m's own head, assembled as m's agent would assemble it.
        func score(_ directory: String) throws -> (acc: [String: Double], f1: [String: Double]) {
            let shared = c.heads == "keep" ? nil : try ModelDirectory.load(directory)
            var acc: [String: Double] = [:], f1: [String: Double] = [:]
            for m in c.members {
                var model = shared
                if model == nil {
                    try MergedDownload.assemble(weights: directory + "/model.safetensors", localModel: modelDir(c, m.name), agentName: m.name,
                                                mergedRoot: directory + "/heads", label: m.name)
                    model = try ModelDirectory.load(directory + "/heads/" + m.name)
                }
                let r = try Evaluation.evaluate(model!, tokenizer: tokenizer, data: test[m.name]!, maxLength: c.maxLength)
                acc[m.name] = r.accuracy; f1[m.name] = r.macroF1
            }
            return (acc, f1)
        }
        func row(_ epsilon: Double?, _ method: String, _ s: (acc: [String: Double], f1: [String: Double])) -> PrivacySweepRow {
            let n = Double(c.members.count)
            return PrivacySweepRow(epsilon: epsilon, method: method, accuracy: s.acc, macroF1: s.f1,
                                   meanAccuracy: s.acc.values.reduce(0, +) / n, meanMacroF1: s.f1.values.reduce(0, +) / n)
        }
        var rows: [PrivacySweepRow] = []
        // Own models on their own test split; the simple average (needs no statistics, so no ε).
        var own: (acc: [String: Double], f1: [String: Double]) = ([:], [:])
        for m in c.members {
            let model = try ModelDirectory.load(modelDir(c, m.name))
            let r = try Evaluation.evaluate(model, tokenizer: tokenizer, data: test[m.name]!, maxLength: c.maxLength)
            own.acc[m.name] = r.accuracy; own.f1[m.name] = r.macroF1
        }
        rows.append(row(nil, "own model (on its own test split)", own))
        let loaded = try c.members.map { m in (m.name, try ModelFiles.loadModel(directory: modelDir(c, m.name)).tensors) }
        let heads: [String: MergeValue] = ["heads": .string(c.heads)]
        let average = try Average().merge(models: loaded.map { ($0.0, $0.1, NamedStatistics(), 1) }, parameters: heads)
        try MergedModelDirectory.write(average, to: c.workdir + "/merged/average", sideFilesFrom: modelDir(c, c.members[0].name))
        rows.append(row(nil, "average (no statistics)", try score(c.workdir + "/merged/average")))

        // 2. Every ε: statistics, RegMean, scores, audit.
        for (i, epsilon) in ([Double.infinity] + c.epsilons).enumerated() {
            let label = epsilon.isFinite ? "eps-\(epsilon)" : "exact"
            var statistics: [(String, NamedTensors, NamedStatistics, Double)] = []
            var multiplier: Double?
            for (j, m) in c.members.enumerated() {
                let path = c.workdir + "/stats/\(label)/\(m.name).safetensors"
                if !FileManager.default.fileExists(atPath: path) {
                    try FileManager.default.createDirectory(atPath: c.workdir + "/stats/\(label)", withIntermediateDirectories: true)
                    var plan = c.gramPlan
                    if epsilon.isFinite {
                        plan.gramNoise = GramNoiseSettings(epsilon: epsilon, delta: c.delta, clip: c.clip, seed: UInt64(1000 * i + j))
                    }
                    try StatisticsRun.write(model: try ModelDirectory.load(modelDir(c, m.name)), tokenizer: tokenizer, data: train[m.name]!,
                                            plan: plan, to: path, showProgress: false)
                }
                let stats = try ModelFiles.loadStatistics(path: path, model: m.name, kinds: [.gram])
                if let text = stats.metadata["gram.privacy"] {
                    multiplier = try JSONDecoder().decode(GramNoiseAccounting.self, from: Data(text.utf8)).noiseMultiplier
                }
                statistics.append((m.name, loaded[j].1, stats, 1))
            }
            let merged = try RegMean().merge(models: statistics, parameters: heads.merging(["alpha": .number(c.alpha)]) { $1 })
            var paths: [String: Int] = [:]
            for e in merged.report.tensors { if let p = e.solvePath { paths[p, default: 0] += 1 } }
            try MergedModelDirectory.write(merged, to: c.workdir + "/merged/\(label)", sideFilesFrom: modelDir(c, c.members[0].name))
            var r = row(epsilon.isFinite ? epsilon : nil, "regmean (α \(c.alpha))", try score(c.workdir + "/merged/\(label)"))
            r.solvePaths = paths
            r.noiseMultiplier = multiplier

            let auditPath = c.workdir + "/audits/\(label).json"
            let report: StatisticsAuditReport
            if let data = FileManager.default.contents(atPath: auditPath), let cached = try? JSONDecoder().decode(StatisticsAuditReport.self, from: data) {
                report = cached
            } else {
                let truth = GramSampleTokens(data: train[c.auditMember]!, tokenizer: tokenizer, plan: c.gramPlan)
                report = try StatisticsAudit.run(model: try ModelDirectory.load(modelDir(c, c.auditMember)), modelPath: modelDir(c, c.auditMember),
                                                 tokenizer: tokenizer, stats: SafeTensorsFile(path: c.workdir + "/stats/\(label)/\(c.auditMember).safetensors"),
                                                 positions: c.maxLength, deepLayer: epsilon.isFinite ? nil : 1, truth: truth)
                try FileManager.default.createDirectory(atPath: c.workdir + "/audits", withIntermediateDirectories: true)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try AtomicFile.write(try encoder.encode(report), to: auditPath)
            }
            if !epsilon.isFinite {
                try FileManager.default.createDirectory(atPath: c.results + "/audit-\(c.auditMember)", withIntermediateDirectories: true)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try AtomicFile.write(try encoder.encode(report), to: c.results + "/audit-\(c.auditMember)/audit.json")
                try AtomicFile.write(Data(AuditChart.svg(report).utf8), to: c.results + "/audit-\(c.auditMember)/audit.svg")
            }
            r.audit = report.layer0.score
            r.auditExactMultiset = report.layer0.exactMultiset
            rows.append(r)
            print(String(format: "%@: RegMean mean accuracy %.3f, macro-F1 %.3f; audit recall@k %.3f", label, r.meanAccuracy ?? .nan, r.meanMacroF1 ?? .nan,
                         r.audit?.recallAtDistinct ?? .nan))
        }
        // A data-free reference for the audit: rank tokens by their counts in another member's Gram
        // sample (a stand-in for public word frequencies). Recall above it is what the Gram adds.
        let truth = GramSampleTokens(data: train[c.auditMember]!, tokenizer: tokenizer, plan: c.gramPlan)
        let other = c.members.first { $0.name != c.auditMember }!
        let prior = GramSampleTokens(data: train[other.name]!, tokenizer: tokenizer, plan: c.gramPlan).tokenCounts
        let priorRanking = (0..<Int32(tokenizer.vocabularySize)).sorted { (prior[$0] ?? 0) > (prior[$1] ?? 0) }
        let special: Set<Int32> = [tokenizer.clsID, tokenizer.sepID, tokenizer.padID]
        var reference = PrivacySweepRow(epsilon: nil, method: "prior: \(other.name)'s token frequencies (no Gram)", accuracy: [:], macroF1: [:],
                                        meanAccuracy: nil, meanMacroF1: nil)
        reference.audit = VocabularyScore(ranking: priorRanking, recovered: nil, truth: truth.tokenCounts, excluded: special)
        rows.append(reference)
        try PrivacySweepReport.write(config: c, rows: rows, minutes: Date().timeIntervalSince(started) / 60)
        print("wrote \(c.results)/report.md, report.json, tradeoff.svg")
    }

    private func modelDir(_ c: PrivacySweepConfig, _ name: String) -> String { c.workdir + "/models/" + name }
}
