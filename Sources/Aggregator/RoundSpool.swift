// The round's durable state on disk, so a restarted aggregator loses nothing:
//   <spool>/round-<id>/<agent>/        one ChunkReceiver spool per agent; a file appears under
//                                      its final name only after its SHA-256 was verified
//   <output>/round-<id>/<label>/       merged model directories (renamed into place whole)
//   <output>/round-<id>/evals.json     every EVAL received so far (atomic rewrite)

import AtomicIO
import Foundation
import Protocol
import SafeTensors

public struct RoundSpool: Sendable {
    public let uploads: String
    public let output: String

    /// Files every agent uploads; `stats.safetensors` only when a method needs statistics.
    public static func requiredFiles(needStatistics: Bool) -> [String] {
        needStatistics ? ["config.json", "model.safetensors", "stats.safetensors"] : ["config.json", "model.safetensors"]
    }

    public init(spoolRoot: String, outputRoot: String, round: Int) throws {
        uploads = spoolRoot + "/round-\(round)"
        output = outputRoot + "/round-\(round)"
        try FileManager.default.createDirectory(atPath: uploads, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    }

    public func agentDirectory(_ agent: String) -> String { uploads + "/" + agent }

    public func mergedDirectory(_ label: String) -> String { output + "/" + label }

    /// The required files this agent has durably committed.
    public func committedFiles(_ agent: String, required: [String]) -> [String] {
        required.filter { FileManager.default.fileExists(atPath: agentDirectory(agent) + "/" + $0) }
    }

    public func isComplete(_ agent: String, required: [String]) -> Bool {
        committedFiles(agent, required: required).count == required.count
    }

    /// A merged model that was written completely (the directory is renamed into place whole).
    public func hasMerged(_ label: String) -> Bool {
        FileManager.default.fileExists(atPath: mergedDirectory(label) + "/model.safetensors")
    }

    // MARK: evaluations

    public typealias Evaluations = [String: [String: [String: Double]]]   // agent → method → metric → value

    public var evalsPath: String { output + "/evals.json" }

    public func loadEvaluations() -> Evaluations {
        guard let data = FileManager.default.contents(atPath: evalsPath),
              let evals = try? JSONDecoder().decode(Evaluations.self, from: data) else { return [:] }
        return evals
    }

    public func saveEvaluations(_ evals: Evaluations) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(evals), to: evalsPath)
    }
}
