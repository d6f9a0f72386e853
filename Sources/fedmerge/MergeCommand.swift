// `fedmerge merge CONFIG.yaml --out DIR`: the offline merge. Reads a mergekit-style YAML
// config, folds the models in one at a time (memory flat in their number), and writes the
// merged model directory atomically (a temporary sibling directory renamed into place).

import ArgumentParser
import Foundation
import LinAlg
import DaemonSupport
import Merge
import MergeIO
import SafeTensors
import AtomicIO

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge fine-tuned models offline from a YAML config (average, fisher, regmean, task_arithmetic, ties, mats).",
        discussion: """
        CONFIG (paths relative to the current directory):
          merge_method: regmean        # see --methods
          base_model: path/to/base     # task_arithmetic, ties
          models:
            - model: agents/a/model    # HF model directory
              stats: agents/a/stats.safetensors
              parameters: {weight: 1.0}
          parameters: {alpha: 0.9, heads: average}
          dtype: float32
        `stats` defaults to <model>/stats.safetensors. Writes DIR/model.safetensors,
        DIR/merge-report.json and the first model's config.json/vocab.txt/tokenizer files.
        """
    )

    @Argument(help: "The merge config (YAML).")
    var config: String?

    @Option(name: .long, help: "Output model directory (must not exist unless --overwrite).")
    var out: String?

    @Flag(help: "List the merge methods and their parameters, then exit.")
    var methods = false

    @Flag(help: "Replace DIR if it exists (the old directory is removed only after the new one is complete).")
    var overwrite = false

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func validate() throws {
        guard methods || (config != nil && out != nil) else {
            throw ValidationError("give a CONFIG and --out DIR (or --methods to list the methods)")
        }
    }

    func run() throws {
        guard let config, let out else { return Self.printMethods() }
        let outcome = try MergeRun(configPath: config, outputDirectory: out, overwrite: overwrite).run()
        if !quiet {
            print("merged \(outcome.report.models.count) models with \(outcome.report.method) → \(out)")
            print("  tensors: " + outcome.report.totals.keys.sorted().map { "\(outcome.report.totals[$0]!) \($0)" }.joined(separator: ", "))
            let paths = Dictionary(grouping: outcome.report.tensors.compactMap(\.solvePath), by: { $0 }).mapValues(\.count)
            if !paths.isEmpty { print("  solves: " + paths.keys.sorted().map { "\(paths[$0]!) \($0)" }.joined(separator: ", ")) }
            if !outcome.skipped.isEmpty { print("  not merged (integer buffers): \(outcome.skipped.joined(separator: ", "))") }
            print("  time: fold \(String(format: "%.2f", outcome.report.addSeconds)) s, finish \(String(format: "%.2f", outcome.report.finishSeconds)) s; report: \(out)/merge-report.json")
        }
    }
}

extension MergeCommand {
    /// Each registered method with its parameters (name, default, doc), as the methods declare them.
    static func printMethods() {
        for method in MethodRegistry.methods {
            print("\(method.name)\(method.needsBase ? " (needs base_model)" : ""): \(method.summary)")
            for p in method.allParameters {
                let value = p.required ? "required" : "default " + (p.defaultValue?.description ?? "none")
                print("    \(p.name) (\(value)): \(p.doc)")
            }
        }
        print("per model: weight (default 1): the model's weight in every sum.")
    }
}

enum MergeRunError: Error, CustomStringConvertible {
    case unreadableConfig(path: String, reason: String)
    case badYAML(path: String, reason: String)
    case outputExists(path: String)

    var description: String {
        switch self {
        case let .unreadableConfig(path, reason): return "\(path): cannot read: \(reason)"
        case let .badYAML(path, reason): return "\(path): not valid YAML: \(reason)"
        case let .outputExists(path): return "\(path) already exists; choose another --out or pass --overwrite"
        }
    }
}

/// One offline merge, file I/O around the Merge target's streaming accumulator.
struct MergeRun {
    let configPath: String
    let outputDirectory: String
    let overwrite: Bool

    struct Outcome {
        var report: MergeReport
        var skipped: [String]
    }

    func run() throws -> Outcome {
        let text: String
        do { text = try String(contentsOfFile: configPath, encoding: .utf8) } catch {
            throw MergeRunError.unreadableConfig(path: configPath, reason: (error as NSError).localizedDescription)
        }
        let document: MergeValue
        do { document = try parseYAML(text) } catch { throw MergeRunError.badYAML(path: configPath, reason: "\(error)") }
        let spec = try MergeSpec(from: document, file: configPath)
        if FileManager.default.fileExists(atPath: outputDirectory) && !overwrite { throw MergeRunError.outputExists(path: outputDirectory) }

        let inputs = spec.models.map { MergeInput(name: $0.name, modelDirectory: $0.model, statisticsPath: $0.stats, weight: $0.weight) }
        let (result, skipped) = try MergeLoop.run(spec.choice, inputs: inputs, baseModel: spec.baseModel)
        try MergedModelDirectory.write(result, to: outputDirectory, sideFilesFrom: spec.models[0].model)
        return Outcome(report: result.report, skipped: skipped)
    }
}
