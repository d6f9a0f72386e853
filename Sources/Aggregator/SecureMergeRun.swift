// The aggregator's side of a secure merge once every member's masked upload is in: sum the
// uploads word by word mod 2^64 (the pairwise masks cancel), decode each summand with the
// round's fixed-point scale (a sum beyond the scale's range is refused, never wrapped), merge
// every method from the sums (SumMerge, the same solves as the clear methods), and write the
// merged models and secure.json: which sums were formed, their scales, the bytes per agent.
// Nothing here ever holds one agent's weights or statistics in the clear — but for heads: keep,
// where each member's own classifier head comes in the clear beside its masked words (a head
// kept per agent is in no sum) and goes into the merged model as in the clear mode; secure.json
// says so, naming the heads.

import AtomicIO
import Foundation
import Logging
import Merge
import MergeIO
import Protocol
import SecureSum

extension MergeRunner {
    static let secureSummaryFile = "secure.json"

    func runSecure(_ inputs: SecureInputs, logger: Logger) throws -> [Outcome] {
        let scale = inputs.scale
        // The survivors: the scale's agents but those dropped after it (their masks come off).
        let agents = scale.agents.filter { !inputs.revealed.contains($0) }
        guard Set(agents) == Set(members.keys) else {
            throw SecureMergeError.members(scale: agents, members: members.keys.sorted())
        }
        var seeds: [String: [String: PairwiseSeed]] = [:]     // dropped → survivor → seed
        for dropped in inputs.revealed {
            for survivor in agents {
                guard let hex = inputs.reveals[survivor]?[dropped] else {
                    throw SecureSumError.badReveal(survivor: survivor, dropped: dropped, reason: "no seed revealed")
                }
                seeds[dropped, default: [:]][survivor] = try PairwiseSeed(revealedHex: hex, survivor: survivor, dropped: dropped)
            }
        }
        let uploadName = SecurePlan.uploadName(merge: definition.name)
        var uploads: [MaskedUpload] = []
        var bytes: [String: Int] = [:]
        var keptHeads: [String: NamedTensors] = [:]
        var clearBytes: [String: Int] = [:]
        for agent in agents {
            let path = inputs.directory + "/" + agent + "/" + uploadName
            let upload = try MaskedUpload.read(path: path)
            guard upload.header.agent == agent, upload.header.merge == definition.name, upload.header.round == definition.id,
                  upload.header.methods.map(\.label) == definition.methods.map(\.label) else {
                throw SecureMergeError.header(agent: agent, reason: "it names agent \(upload.header.agent), merge \(upload.header.merge), round \(upload.header.round), methods \(upload.header.methods.map(\.label))")
            }
            if let first = uploads.first, first.header.methods != upload.header.methods {
                throw SecureMergeError.header(agent: agent, reason: "its summand layout differs from \(agents[0])'s")
            }
            guard upload.words.count == scale.fractionBits.count else {
                throw SecureMergeError.header(agent: agent, reason: "\(upload.words.count) summands, the scale has \(scale.fractionBits.count)")
            }
            // Its config.json (labels) beside the upload, for the published config.
            try FileManager.default.createDirectory(atPath: inputs.directory + "/" + agent + "/config", withIntermediateDirectories: true)
            try AtomicFile.write(Data(upload.header.config.utf8), to: inputs.directory + "/" + agent + "/config/config.json")
            bytes[agent] = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
            // Clear tensors are accepted only as heads some method keeps per agent.
            var kept: Set<String> = []
            for (method, entry) in zip(upload.header.methods, definition.methods) {
                kept.formUnion(try SumMerge.keptHeadNames(layout: method.layout, parameters: entry.choice.rawParameters))
            }
            if let stray = upload.clearTensors.names.first(where: { !kept.contains($0) }) {
                throw SecureMergeError.header(agent: agent, reason: "it sends \(stray) in the clear, which is no head kept per agent (heads: keep)")
            }
            if upload.clearTensors.count > 0 {
                keptHeads[agent] = upload.clearTensors
                clearBytes[agent] = upload.clearTensors.pairs.reduce(0) { $0 + $1.tensor.storage.count * 4 }
            }
            uploads.append(upload)
        }
        var outcomes: [Outcome] = []
        var summary: [String: Any] = ["secure": true, "agents": agents, "bytes_per_agent": bytes, "dropped": inputs.dropped,
                                      "masks_removed_by_reveal": inputs.revealed]
        if !keptHeads.isEmpty {
            summary["heads_sent_in_clear"] = keptHeads.mapValues(\.names)
            summary["clear_bytes_per_agent"] = clearBytes
        }
        var methodsSummary: [String: Any] = [:]
        var k = 0
        var sumsByLabel: [String: [[Double]]] = [:]
        for (m, entry) in definition.methods.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            let method = uploads[0].header.methods[m]
            let layout = method.layout
            var sums: [[Double]] = []
            var fractionBits: [String: Int] = [:]
            if let twin = method.sameAs {
                guard let same = sumsByLabel[twin] else { throw SecureMergeError.header(agent: agents[0], reason: "method \(entry.label) refers to \(twin), which does not come before it") }
                sums = same
                methodsSummary[entry.label] = ["same_sums_as": twin]
            }
            for spec in layout.summands where method.sameAs == nil {
                var total = try PairwiseMask.sum(uploads.map { $0.words[k] })
                for dropped in inputs.revealed {
                    try PairwiseMask.removeDropped(dropped, from: &total, survivors: agents, revealed: seeds[dropped]!, stream: UInt64(k))
                }
                let bound = scale.boundExponents[k].map { FixedPointScale.power($0) } ?? 0
                let fixed = FixedPointScale(fractionBits: scale.fractionBits[k], bound: bound, agents: scale.agents.count)
                sums.append(try fixed.decode(sum: total, tensor: "\(entry.label): \(spec.key)"))
                fractionBits[spec.key] = scale.fractionBits[k]
                k += 1
            }
            if method.sameAs == nil { methodsSummary[entry.label] = ["sums": layout.summands.map(\.key), "fraction_bits": fractionBits] }
            sumsByLabel[entry.label] = sums
            if output.hasMerged(entry.label) { continue }
            let result = try SumMerge.merge(layout: layout, parameters: entry.choice.rawParameters, sums: sums, models: agents.map { ($0, 1.0) },
                                            keptHeads: keptHeads)
            if !result.report.headsMapping.isEmpty {
                var m = methodsSummary[entry.label] as? [String: Any] ?? [:]
                m["heads"] = "keep: each member's own head was sent in the clear beside its masked sums"
                methodsSummary[entry.label] = m
            }
            try publish(result, label: entry.label, agentDirectories: agents.map { ($0, inputs.directory + "/" + $0 + "/config") })
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            logger.info("merged from masked sums", metadata: ["merge": "\(definition.name)", "method": "\(entry.label)", "agents": "\(agents.joined(separator: ","))",
                                                              "seconds": "\(String(format: "%.2f", seconds))"])
            outcomes.append(Outcome(label: entry.label, report: result.report, seconds: seconds))
        }
        summary["methods"] = methodsSummary
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys]),
                             to: output.directory + "/" + Self.secureSummaryFile)
        return outcomes
    }
}

public enum SecureMergeError: Error, CustomStringConvertible {
    case members(scale: [String], members: [String])
    case header(agent: String, reason: String)

    public var description: String {
        switch self {
        case let .members(scale, members): return "the secure scale covers \(scale.joined(separator: ", ")) but the merge's members are \(members.joined(separator: ", "))"
        case let .header(agent, reason): return "the masked upload of \(agent) does not fit this merge: \(loggable(reason, limit: 400))"
        }
    }
}
