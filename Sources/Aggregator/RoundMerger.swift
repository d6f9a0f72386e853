// Runs every configured method over the spooled uploads, one model at a time into the
// Merge library's running sums (memory flat in the number of agents), and writes each
// merged model directory atomically.

import Foundation
import Logging
import Merge
import MergeIO

public struct RoundMerger: Sendable {
    public struct Outcome: Sendable {
        public var label: String
        public var report: MergeReport
        public var seconds: Double
    }

    public let config: AggregatorConfig
    public let spool: RoundSpool

    public init(config: AggregatorConfig, spool: RoundSpool) {
        self.config = config
        self.spool = spool
    }

    /// Merges `agents` (in name order, so the result does not depend on arrival order) with
    /// every method whose output is not already on disk; returns one outcome per method run.
    public func run(agents: [String], logger: Logger) throws -> [Outcome] {
        let members = agents.sorted()
        var base: NamedTensors?
        if config.methods.contains(where: { $0.choice.method.needsBase }) {
            base = try ModelFiles.loadModel(directory: config.baseModel).tensors
        }
        var outcomes: [Outcome] = []
        for entry in config.methods where !spool.hasMerged(entry.label) {
            let start = DispatchTime.now().uptimeNanoseconds
            let accumulator = try entry.choice.makeAccumulator(base: entry.choice.method.needsBase ? base : nil)
            let kinds = entry.choice.requiredStatistics
            for agent in members {
                let directory = spool.agentDirectory(agent)
                let tensors = try ModelFiles.loadModel(directory: directory).tensors
                let statistics = try ModelFiles.loadStatistics(path: directory + "/stats.safetensors", model: agent, kinds: kinds)
                try accumulator.add(model: tensors, statistics: statistics, weight: 1, name: agent)
            }
            let result = try accumulator.finish()
            // Published config: the base model's, with the labels the agents agree on — never
            // one agent's config.json verbatim.
            var published = try ContributionCheck.mergedConfig(baseModel: config.baseModel,
                                                               agentDirectories: members.map { ($0, spool.agentDirectory($0)) },
                                                               headsKept: !result.report.headsMapping.isEmpty)
            if !result.report.headsMapping.isEmpty { published["fedmerge_heads"] = result.report.headsMapping }
            try MergedModelDirectory.write(result, to: spool.mergedDirectory(entry.label), sideFilesFrom: config.baseModel,
                                           config: try JSONSerialization.data(withJSONObject: published, options: [.prettyPrinted, .sortedKeys]))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            logger.info("merged", metadata: ["method": "\(entry.label)", "agents": "\(members.joined(separator: ","))",
                                             "seconds": "\(String(format: "%.2f", seconds))"])
            outcomes.append(Outcome(label: entry.label, report: result.report, seconds: seconds))
        }
        return outcomes
    }
}
