// The fleet benchmark's agent-side local work: the real agent daemon runs with a contribution
// already in `workdir/prepared/` (made by FleetRun.prepare: a real fine-tuned model and its
// statistics, perturbed per agent) and answers every evaluation with a fixed score, so K
// agents cost the machine their protocol work only — no fine-tuning, no statistics pass, no
// inference.

import Agent
import Foundation
import Logging
import Protocol

struct FleetWork: LocalWork {
    let config: AgentConfig
    /// The score every EVAL reports (not a measurement).
    static let fixedScore: [String: Double] = ["accuracy": 0.5, "macro_f1": 0.5]

    func prepare(statistics: [String], into directory: String, logger: Logger) throws {
        for file in ["config.json", "model.safetensors", "stats.safetensors"] where !FileManager.default.fileExists(atPath: directory + "/" + file) {
            throw FleetWorkError.missingContribution(path: directory + "/" + file)
        }
    }

    /// The fixed score. A merged model's copies (the download and the assembled directory's
    /// weights) are removed once "evaluated": K agents × every method would otherwise fill the disk.
    func evaluate(modelDirectory: String, logger: Logger) throws -> [String: Double] {
        let directory = URL(fileURLWithPath: modelDirectory)
        if directory.deletingLastPathComponent().lastPathComponent == "merged" {
            let label = directory.lastPathComponent
            try? FileManager.default.removeItem(atPath: modelDirectory + "/model.safetensors")
            try? FileManager.default.removeItem(atPath: directory.deletingLastPathComponent().deletingLastPathComponent().path
                                                + "/downloads/\(label).safetensors")
        }
        return Self.fixedScore
    }

    /// What the contribution is: this agent's perturbation seed (FleetRun writes it beside the files).
    func contributionFingerprint() throws -> String? {
        let seed = (try? String(contentsOfFile: config.workdir + "/prepared/.fleet-seed", encoding: .utf8)) ?? ""
        let hasher = SHA256Hasher()
        hasher.update(Data("fleet\n\(config.name)\n\(seed)".utf8))
        return hasher.finalizeHex()
    }
}

enum FleetWorkError: Error, CustomStringConvertible {
    case missingContribution(path: String)
    var description: String {
        switch self {
        case .missingContribution(let path): return "\(path) is missing: run `fedmerge bench fleet` (it prepares every agent's contribution) rather than an agent alone"
        }
    }
}
