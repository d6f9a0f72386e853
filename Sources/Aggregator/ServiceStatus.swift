// What the aggregator says about itself on disk: `<spool>/status.json` (agents: connected,
// last seen; read by `fedmerge status`) and the metrics file in the Prometheus text
// exposition format (node_exporter's textfile-collector convention), both rewritten
// atomically when they change.

import Foundation
import Protocol

public struct ServiceStatus: Codable, Sendable, Equatable {
    public struct AgentStatus: Codable, Sendable, Equatable {
        public var connected: Bool
        /// Seconds since 1970 of the agent's last message, if any since the aggregator started.
        public var lastSeen: Double?
    }
    public var agents: [String: AgentStatus]

    static func snapshot(_ state: AggregatorState) -> ServiceStatus {
        let connected = Set(state.links.values.map(\.agent))
        var agents: [String: AgentStatus] = [:]
        for (name, record) in state.agents { agents[name] = AgentStatus(connected: connected.contains(name), lastSeen: record.lastSeen) }
        return ServiceStatus(agents: agents)
    }

    static func encode(_ status: ServiceStatus) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(status)
    }

    public static func load(spool: String) -> ServiceStatus? {
        guard let data = FileManager.default.contents(atPath: spool + "/status.json") else { return nil }
        return try? JSONDecoder().decode(ServiceStatus.self, from: data)
    }

    /// The metrics, one family per block (# HELP, # TYPE, samples), label values escaped.
    static func metrics(_ state: AggregatorState) -> String {
        var out: [String] = []
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: [(String, String)], value: Double)]) {
            out.append("# HELP \(name) \(help)")
            out.append("# TYPE \(name) \(type)")
            for s in samples {
                let labels = s.labels.isEmpty ? "" : "{" + s.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
                out.append("\(name)\(labels) \(format(s.value))")
            }
        }
        let connected = Set(state.links.values.map(\.agent))
        family("fedmerge_agents_connected", "gauge", "Agents with an admitted link.", [([], Double(connected.count))])
        family("fedmerge_contributions_stored", "gauge", "Agents whose contribution passed the checks and is stored.",
               [([], Double(state.agents.values.filter { $0.current != nil }.count))])
        family("fedmerge_upload_bytes_total", "counter", "Upload payload bytes received from agents.", [([], Double(state.counters.bytesIn))])
        family("fedmerge_download_bytes_total", "counter", "Merged-model bytes delivered to agents.", [([], Double(state.counters.bytesOut))])
        family("fedmerge_evals_received_total", "counter", "EVALs recorded (first value per agent, merge and model).", [([], Double(state.counters.evalsReceived))])
        family("fedmerge_refusals_total", "counter", "Links refused or dropped, by reason.",
               state.counters.refusals.keys.sorted().map { ([("reason", $0)], Double(state.counters.refusals[$0]!)) })
        family("fedmerge_merge_seconds", "gauge", "Wall-clock seconds of the latest merge of each method.",
               state.counters.mergeSeconds.keys.sorted().map { key in
                   let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
                   return ([("merge", parts[0]), ("method", parts.count > 1 ? parts[1] : "")], state.counters.mergeSeconds[key]!)
               })
        let phases: [MergePhase] = [.collecting, .merging, .distributing, .finished, .failed]
        family("fedmerge_merges", "gauge", "Merges defined, by phase.",
               phases.map { phase in ([("phase", phase.rawValue)], Double(state.merges.values.filter { $0.phase.name == phase }.count)) })
        return out.joined(separator: "\n") + "\n"
    }

    /// Label values escape backslash, double quote and newline (exposition format).
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
}
