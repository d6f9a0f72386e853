// How each agent's upload went on the wire, for the round report: payload bytes received
// (retransmissions after a broken link included, so a bad link shows as more bytes than the
// files hold), the links it took, and seconds from the first chunk to the last committed file.
// Kept by the daemon in memory only: a restarted aggregator reports what it saw since then.

import Foundation
import Protocol

public struct UploadTiming: Sendable, Equatable {
    public var payloadBytes: UInt64 = 0
    /// Upload links opened (1 when the upload went through on its first connection).
    public var links = 0
    public var firstChunk: Double?
    public var lastCommit: Double?

    /// First chunk to last committed file; nil until both happened.
    public var seconds: Double? {
        guard let firstChunk, let lastCommit else { return nil }
        return max(0, lastCommit - firstChunk)
    }

    public var json: [String: Any] {
        var object: [String: Any] = ["payload_bytes": payloadBytes, "links": links]
        if let seconds { object["seconds"] = seconds }
        return object
    }
}

/// Agent → its upload timing, fed by the daemon as upload messages arrive.
public struct UploadTimings: Sendable {
    public private(set) var byAgent: [String: UploadTiming] = [:]
    public init() {}

    mutating func opened(_ agent: String) {
        byAgent[agent, default: UploadTiming()].links += 1
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
