// Runs one merge's methods over a snapshot of the store (agent → fingerprint) through the
// shared merge loop, and writes each merged model directory atomically with the published
// config (the base model's, plus the labels the agents agree on).

import Foundation
import Logging
import Merge
import MergeIO

public struct MergeRunner: Sendable {
    public struct Outcome: Sendable {
        public var label: String
        public var report: MergeReport
        public var seconds: Double
    }

    public let definition: MergeDefinition
    public let members: [String: String]
    public let store: ContributionStore
    public let output: MergeOutput
    public let baseModel: String
    /// Remove merged models an earlier generation left before merging (on the merge thread,
    /// so a still-running earlier merge cannot write after the removal).
    public let fresh: Bool
    /// A secure merge: where the members' masked uploads are and the scale they were encoded with.
    public struct SecureInputs: Sendable {
        public var directory: String
        public var scale: SecureScale
        /// Every member left out (for the report).
        public var dropped: [String] = []
        /// Members dropped after the scale, whose masks the survivors' reveals remove.
        public var revealed: [String] = []
        /// Survivor → dropped member → seed (hex).
        public var reveals: [String: [String: String]] = [:]
    }
    public var secure: SecureInputs?
    /// The aggregator's `align:`: members are aligned to the reference before merging.
    public var align: FederationAlignment?

    public init(definition: MergeDefinition, members: [String: String], store: ContributionStore, output: MergeOutput, baseModel: String, fresh: Bool) {
        self.definition = definition
        self.members = members
        self.store = store
        self.output = output
        self.baseModel = baseModel
        self.fresh = fresh
    }

    /// Merges the snapshot (agents in name order, so the result does not depend on arrival
    /// order) with every method whose output is not already on disk.
    public func run(logger: Logger) throws -> [Outcome] {
        try output.create()
        if fresh { try output.clearMergedModels() }
        if let secure { return try runSecure(secure, logger: logger) }
        let agents = members.keys.sorted()
        var inputs = agents.map { MergeInput(name: $0, modelDirectory: store.directory($0, members[$0]!)) }
        // The published config reads labels from the stored config.json files, never the copies.
        let stored = inputs.map { ($0.name, $0.modelDirectory) }
        let scratch = output.directory + "/" + FederationAlignment.scratch
        if let align, definition.methods.contains(where: { !output.hasMerged($0.label) }) {
            inputs = try align.alignedInputs(merge: definition.name, members: stored.map { (agent: $0.0, directory: $0.1) }, baseModel: baseModel,
                                             scratch: scratch, reports: output.directory, logger: logger)
        }
        // The aligned copies are scratch: recomputed by any later run, never sent anywhere.
        defer { if align != nil { try? FileManager.default.removeItem(atPath: scratch) } }
        var outcomes: [Outcome] = []
        for entry in definition.methods where !output.hasMerged(entry.label) {
            let start = DispatchTime.now().uptimeNanoseconds
            let (result, _) = try MergeLoop.run(entry.choice, inputs: inputs, baseModel: baseModel)
            try publish(result, label: entry.label, agentDirectories: stored)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            logger.info("merged", metadata: ["merge": "\(definition.name)", "method": "\(entry.label)", "agents": "\(agents.joined(separator: ","))",
                                             "seconds": "\(String(format: "%.2f", seconds))"])
            outcomes.append(Outcome(label: entry.label, report: result.report, seconds: seconds))
        }
        return outcomes
    }

    /// Writes one method's merged model directory atomically with the published config: the
    /// base model's, with the labels the agents agree on (read from their config.json in
    /// `agentDirectories`) — never one agent's config.json verbatim — and the kept heads' mapping.
    func publish(_ result: MergeResult, label: String, agentDirectories: [(String, String)]) throws {
        let headsKept = !result.report.headsMapping.isEmpty
        var published = try ContributionCheck.mergedConfig(baseModel: baseModel, agentDirectories: agentDirectories, headsKept: headsKept)
        if headsKept { published["fedmerge_heads"] = result.report.headsMapping }
        try MergedModelDirectory.write(result, to: output.mergedDirectory(label), sideFilesFrom: baseModel,
                                       config: try JSONSerialization.data(withJSONObject: published, options: [.prettyPrinted, .sortedKeys]))
    }
}
