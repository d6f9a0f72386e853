// `fedmerge status CONFIG`: what the aggregator's durable files say — agents (connected, last
// seen, stored contribution and its size) and merges (phase, members, methods, EVAL coverage).

import Aggregator
import ArgumentParser
import DaemonSupport
import Foundation
import Protocol

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print the aggregator's agents and merges from its store and output directories."
    )

    @Argument(help: "The aggregator config (YAML).")
    var config: String

    func run() throws {
        let loaded = try DaemonCommand.load(config, AggregatorConfig.load(file:))
        print(Self.render(spool: loaded.spool, output: loaded.output, allow: loaded.allow))
    }

    static func render(spool: String, output: String, allow: [String]) -> String {
        let agents = ContributionStore.scan(root: spool)
        let status = ServiceStatus.load(spool: spool)
        let forgotten = ContributionStore.forgotten(root: spool)
        let served = ContributionStore.isServed(root: spool)
        var lines = ["aggregator: \(served ? "running" : "not running") (spool \(spool))", "", "agents:"]
        let formatter = ISO8601DateFormatter()
        for name in Set(allow).union(agents.keys).sorted() {
            let record = agents[name]
            let seen = status?.agents[name]?.lastSeen.map { formatter.string(from: Date(timeIntervalSince1970: $0)) } ?? "-"
            let connected = served && (status?.agents[name]?.connected ?? false)
            var contribution = "no contribution"
            if let fp = record?.current, let c = record?.contributions[fp] {
                contribution = "contribution \(fp.prefix(12)) (\(c.bytes) bytes; \(c.kinds.sorted().map(\.rawValue).joined(separator: ",")))"
            } else if let c = record?.contributions.first {
                contribution = "contribution \(c.key.prefix(12)) incomplete or unchecked (\(c.value.files.sorted().joined(separator: ",")))"
            }
            var notes: [String] = []
            if forgotten.contains(name) { notes.append("forgotten") }
            if let q = record?.quarantine { notes.append("quarantined: \(q.joined(separator: "; "))") }
            lines.append("  \(name): \(connected ? "connected" : "not connected"), last seen \(seen), \(contribution)" + (notes.isEmpty ? "" : " [\(notes.joined(separator: "; "))]"))
        }
        lines.append("")
        lines.append("merges:")
        let records = MergeOutput.records(outputRoot: output)
        if records.isEmpty { lines.append("  (none yet)") }
        for (name, (record, ledger)) in records.sorted(by: { $0.value.0.id < $1.value.0.id }) {
            let members = record.members.keys.sorted()
            let audience = (record.audience ?? members).filter { !forgotten.contains($0) }
            var expected = 0, done = 0
            for agent in audience {
                let labels = (record.members[agent] != nil ? [ReservedLabel.local] : []) + record.methods
                expected += labels.count
                done += labels.filter { ledger.isEvaluated(agent, $0) }.count
            }
            lines.append("  \(name) (round \(record.id), generation \(record.generation)): \(record.phase.rawValue); members \(members.isEmpty ? "-" : members.joined(separator: ", ")); methods \(record.methods.joined(separator: ", ")); EVALs \(done)/\(expected)"
                         + (record.reason.map { "; \($0)" } ?? ""))
        }
        return lines.joined(separator: "\n")
    }
}
