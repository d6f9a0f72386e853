// What the TLS-in-ZeroMQ server and client share: why a link ends, heartbeat timing, the
// frame-size cap, and sealing one message into one ZeroMQ frame of TLS records.

import Foundation

/// Why a link was refused or ended. Every case names what went wrong so a log line is enough.
public enum LinkFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case handshake(TLSError)
    case noPeerName
    case nameNotAllowed(String)
    case tooManyPendingHandshakes(limit: Int)
    case malformedFrames(count: Int)
    case malformedMessage(MessageDecodingError)
    case record(TLSError)
    case heartbeatTimeout(seconds: Double)
    case handshakeTimeout(seconds: Double)
    case peerUnreachable(seconds: Double)
    case refusedByServer(reason: String)
    case transport(ZMQError)
    case notConnected
    case unknownPeer(PeerID)
    case superseded(by: PeerID)

    public var description: String {
        switch self {
        case .handshake(let error): "\(error)"
        case .noPeerName: "the peer certificate has no common name"
        case .nameNotAllowed(let name): "certificate name '\(name)' is not on the allow-list"
        case .tooManyPendingHandshakes(let limit): "more than \(limit) handshakes in progress; new peer turned away"
        case .malformedFrames(let count): "expected one data frame per message, got \(count) frames"
        case .malformedMessage(let error): "malformed message: \(error)"
        case .record(let error): "\(error)"
        case .heartbeatTimeout(let seconds): "no traffic from the peer for \(seconds) s (heartbeat timeout)"
        case .handshakeTimeout(let seconds): "handshake not completed within \(seconds) s"
        case .peerUnreachable(let seconds): "could not hand a frame to the peer for \(seconds) s (connection lost)"
        case .refusedByServer(let reason): "the server refused this link: \(reason)"
        case .transport(let error): "\(error)"
        case .notConnected: "the link is not connected; call connect() (again)"
        case .unknownPeer(let peer): "no connected peer \(peer)"
        case .superseded(let peer): "a newer link \(peer) with the same certificate name replaced this one"
        }
    }
}

/// Heartbeat timing (the ZeroMQ guide's "paranoid pirate" shape): send one when idle for
/// `interval`, declare the peer dead after `timeout` without any frame from it.
public struct HeartbeatPolicy: Sendable, Equatable {
    public var interval: Double
    public var timeout: Double
    public init(interval: Double = 1, timeout: Double = 10) {
        self.interval = interval
        self.timeout = timeout
    }
    public static let standard = HeartbeatPolicy()
}

/// A ROUTER routing id: which DEALER a frame came from. Opaque; printable as hex.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: Data
    public init(_ bytes: Data) { self.bytes = bytes }
    public var description: String { bytes.map { String(format: "%02x", $0) }.joined() }
}

/// Monotonic seconds.
func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

enum SecureFraming {
    /// Largest ciphertext frame for `limits`: the message plus TLS record overhead
    /// (≤ 256 bytes per 16 KiB record) plus slack for the handshake flight.
    static func maxFrameBytes(_ limits: MessageLimits) -> Int {
        let records = limits.maxMessageBytes / 16384 + 2
        return limits.maxMessageBytes + records * 256 + (64 << 10)
    }

    /// Encrypts `message` (head, then payload, no concatenation) and sends all its records as
    /// one frame, preceded by `routingID` on a ROUTER.
    static func seal(_ message: Message, codec: MessageCodec, session: TLSSession, socket: ZMQSocket, routingID: Data?) throws {
        let head = codec.encodeHead(of: message)
        try head.withUnsafeBytes { try session.write($0) }
        if case .chunk(_, let payload) = message {
            try payload.withUnsafeBytes { try session.write($0) }
        }
        try flush(session: session, socket: socket, routingID: routingID)
    }

    /// Sends whatever records the session has produced (handshake flights, alerts) as one frame.
    static func flush(session: TLSSession, socket: ZMQSocket, routingID: Data?) throws {
        let count = session.pendingOutput
        guard count > 0 else { return }
        if let routingID { try socket.send(routingID, more: true) }
        try socket.send(count: count) { session.drainOutput(into: $0) }
    }
}
