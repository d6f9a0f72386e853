// How each agent's upload went on the wire, for the round report: payload bytes received
// (retransmissions after a broken link included, so a bad link shows as more bytes than the
// files hold), the links it took, and seconds from its first upload link's admission to the last committed
// file (so a link that broke mid-upload shows as the time it cost).
// Kept by the daemon in memory only: a restarted aggregator reports what it saw since then.

import Foundation
import Protocol

public struct UploadTiming: Sendable, Equatable {
    public var payloadBytes: UInt64 = 0
    /// Upload links opened (1 when the upload went through on its first connection).
    public var links = 0
    public var firstOpened: Double?
    public var firstChunk: Double?
    public var lastCommit: Double?

    /// First upload link admitted to last committed file; nil until both happened.
    public var seconds: Double? {
        guard let firstOpened, let lastCommit else { return nil }
        return max(0, lastCommit - firstOpened)
    }

    /// First chunk to last committed file.
    public var transferSeconds: Double? {
        guard let firstChunk, let lastCommit else { return nil }
        return max(0, lastCommit - firstChunk)
    }

    public var json: [String: Any] {
        var object: [String: Any] = ["payload_bytes": payloadBytes, "links": links]
        if let seconds { object["seconds"] = seconds }
        if let transferSeconds { object["transfer_seconds"] = transferSeconds }
        return object
    }
}

/// Agent → its upload timing, fed by the daemon as upload messages arrive.
public struct UploadTimings: Sendable {
    public private(set) var byAgent: [String: UploadTiming] = [:]
    public init() {}

    mutating func opened(_ agent: String, at now: Double) {
        byAgent[agent, default: UploadTiming()].links += 1
        if byAgent[agent]!.firstOpened == nil { byAgent[agent]!.firstOpened = now }
    }

    mutating func received(_ message: Message, agent: String, at now: Double) {
        guard case .chunk(_, let payload) = message else { return }
        byAgent[agent, default: UploadTiming()].payloadBytes += UInt64(payload.count)
        if byAgent[agent]!.firstChunk == nil { byAgent[agent]!.firstChunk = now }
    }

    mutating func committed(_ agent: String, at now: Double) {
        byAgent[agent, default: UploadTiming()].lastCommit = now
    }
}
