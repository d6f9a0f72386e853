// The typed messages agents and the aggregator exchange (DESIGN.md §4), one header
// struct per type. The binary framing lives in MessageCodec.swift.

import Foundation
// The round's message headers (HELLO, WELCOME, MERGED, EVAL, …) are RoundContract's; every
// user of the wire sees them through Protocol.
@_exported import RoundContract

/// Wire number of each message type. Numbers are part of the protocol: never reuse one.
public enum MessageType: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 1
    case welcome = 2
    case refused = 3
    case offer = 4
    case resume = 5
    case chunk = 6
    case ack = 7
    case commit = 8
    case committed = 9
    case merged = 10
    case eval = 11
    case error = 12
    case heartbeat = 13
    case evaluated = 14
    // Secure summation (issue 13).
    case secureKey = 15
    case secureKeys = 16
    case secureBounds = 17
    case secureScale = 18
    case revealRequest = 19
    case reveal = 20
    // A merge given up (issue 13: members of a failed secure merge stop waiting).
    case mergeFailed = 21

    public var description: String {
        switch self {
        case .hello: "HELLO"
        case .welcome: "WELCOME"
        case .refused: "REFUSED"
        case .offer: "OFFER"
        case .resume: "RESUME"
        case .chunk: "CHUNK"
        case .ack: "ACK"
        case .commit: "COMMIT"
        case .committed: "COMMITTED"
        case .merged: "MERGED"
        case .eval: "EVAL"
        case .error: "ERROR"
        case .heartbeat: "HEARTBEAT"
        case .evaluated: "EVALUATED"
        case .secureKey: "SECURE_KEY"
        case .secureKeys: "SECURE_KEYS"
        case .secureBounds: "SECURE_BOUNDS"
        case .secureScale: "SECURE_SCALE"
        case .revealRequest: "REVEAL_REQUEST"
        case .reveal: "REVEAL"
        case .mergeFailed: "MERGE_FAILED"
        }
    }

    /// Only CHUNK carries bulk bytes after its header; every other payload must be empty.
    public var carriesPayload: Bool { self == .chunk }
}

/// Sender → receiver: I want to send file `name` of `size` bytes with this SHA-256 (hex).
/// Sent again after a reconnect; the reply is RESUME with the durable offset.
public struct Offer: Codable, Sendable, Equatable {
    public var transferID: String
    public var name: String
    public var size: UInt64
    public var sha256: String
    public var attributes: [String: String]

    public init(transferID: String, name: String, size: UInt64, sha256: String, attributes: [String: String] = [:]) {
        self.transferID = transferID
        self.name = name
        self.size = size
        self.sha256 = sha256
        self.attributes = attributes
    }
}

/// Receiver → sender: continue (or restart, offset 0) from `offset`, the bytes already durable.
public struct Resume: Codable, Sendable, Equatable {
    public var transferID: String
    public var offset: UInt64
    public init(transferID: String, offset: UInt64) {
        self.transferID = transferID
        self.offset = offset
    }
}

/// Sender → receiver: the payload bytes belong at `offset` of the transfer.
public struct Chunk: Codable, Sendable, Equatable {
    public var transferID: String
    public var offset: UInt64
    public init(transferID: String, offset: UInt64) {
        self.transferID = transferID
        self.offset = offset
    }
}

/// Receiver → sender: everything below `durableOffset` is on disk (fsynced). One credit back.
public struct Ack: Codable, Sendable, Equatable {
    public var transferID: String
    public var durableOffset: UInt64
    public init(transferID: String, durableOffset: UInt64) {
        self.transferID = transferID
        self.durableOffset = durableOffset
    }
}

/// Sender → receiver: all bytes sent; verify against `sha256` and make the file durable.
public struct Commit: Codable, Sendable, Equatable {
    public var transferID: String
    public var sha256: String
    public init(transferID: String, sha256: String) {
        self.transferID = transferID
        self.sha256 = sha256
    }
}

/// Receiver → sender: the file is verified and renamed into place.
public struct Committed: Codable, Sendable, Equatable {
    public var transferID: String
    public var name: String
    public init(transferID: String, name: String) {
        self.transferID = transferID
        self.name = name
    }
}

/// Either side: I am alive. Consumed by the link layer; also the server's admission signal.
public struct Heartbeat: Codable, Sendable, Equatable {
    public init() {}
}

/// One decoded message. CHUNK's payload is the only bulk data.
public enum Message: Sendable, Equatable {
    case hello(Hello)
    case welcome(Welcome)
    case refused(Refused)
    case offer(Offer)
    case resume(Resume)
    case chunk(Chunk, payload: Data)
    case ack(Ack)
    case commit(Commit)
    case committed(Committed)
    case merged(Merged)
    case eval(Eval)
    case evaluated(Evaluated)
    case error(ErrorReport)
    case heartbeat
    case secureKey(SecureKey)
    case secureKeys(SecureKeys)
    case secureBounds(SecureBounds)
    case secureScale(SecureScale)
    case revealRequest(RevealRequest)
    case reveal(Reveal)
    case mergeFailed(MergeFailed)

    public var type: MessageType {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .refused: .refused
        case .offer: .offer
        case .resume: .resume
        case .chunk: .chunk
        case .ack: .ack
        case .commit: .commit
        case .committed: .committed
        case .merged: .merged
        case .eval: .eval
        case .evaluated: .evaluated
        case .error: .error
        case .heartbeat: .heartbeat
        case .secureKey: .secureKey
        case .secureKeys: .secureKeys
        case .secureBounds: .secureBounds
        case .secureScale: .secureScale
        case .revealRequest: .revealRequest
        case .reveal: .reveal
        case .mergeFailed: .mergeFailed
        }
    }
}
