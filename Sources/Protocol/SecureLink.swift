// What the TLS-over-ZeroMQ-STREAM server and client share: why a link ends, heartbeat timing,
// and sealing one length-prefixed message into TLS records sent to one connection.

import Foundation

/// Why a link was refused or ended. Every case names what went wrong so a log line is enough;
/// values a peer chose (names, reasons) are escaped by `loggable` in the description.
public enum LinkFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case handshake(TLSError)
    case noPeerName
    case nameNotAllowed(String)
    /// A pending handshake closed to make room for a newer connection (the table holds `limit`).
    case evicted(limit: Int)
    /// A connection sent more than `limit` bytes without completing its handshake.
    case handshakeTooLarge(limit: Int)
    case malformedMessage(MessageDecodingError)
    case record(TLSError)
    case heartbeatTimeout(seconds: Double)
    case handshakeTimeout(seconds: Double)
    case peerUnreachable(seconds: Double)
    /// The TCP connection ended (the peer closed it, or the server did without a word).
    case connectionClosed
    /// The server turned our handshake away before answering it (too many handshakes in
    /// progress); reconnecting later is the remedy.
    case serverBusy
    case refusedByServer(reason: String)
    /// The peer sent ERROR and closed the link.
    case errorFromPeer(code: String, message: String)
    case transport(ZMQError)
    case notConnected
    case unknownPeer(PeerID)
    case superseded(by: PeerID)

    public var description: String {
        switch self {
        case .handshake(let error): loggable("\(error)", limit: 600)
        case .noPeerName: "the peer certificate has no common name"
        case .nameNotAllowed(let name): "certificate name '\(loggable(name))' is not on the allow-list"
        case .evicted(let limit): "handshake abandoned: \(limit) handshakes were pending and a newer connection needed the place of this, the oldest"
        case .handshakeTooLarge(let limit): "more than \(limit) bytes sent without completing the TLS handshake"
        case .malformedMessage(let error): "malformed message: \(loggable("\(error)", limit: 400))"
        case .record(let error): loggable("\(error)", limit: 600)
        case .heartbeatTimeout(let seconds): "no traffic from the peer for \(seconds) s (heartbeat timeout)"
        case .handshakeTimeout(let seconds): "handshake not completed within \(seconds) s"
        case .peerUnreachable(let seconds): "could not hand a frame to the peer for \(seconds) s (connection lost)"
        case .connectionClosed: "the connection was closed by the other side"
        case .serverBusy: "the server is busy (too many handshakes in progress) and turned this connection away; retry later"
        case .refusedByServer(let reason): "the server refused this link: \(loggable(reason, limit: 400))"
        case .errorFromPeer(let code, let message): "the peer ended the link with ERROR \(loggable(code, limit: 40)): \(loggable(message, limit: 400))"
        case .transport(let error): "\(error)"
        case .notConnected: "the link is not connected; call connect() (again)"
        case .unknownPeer(let peer): "no connected peer \(peer)"
        case .superseded(let peer): "a newer link \(peer) with the same certificate name replaced this one"
        }
    }

    /// The ERROR code a link ended for this reason is announced with, when TLS still works.
    var errorCode: String? {
        switch self {
        case .malformedMessage(.messageTooLong), .malformedMessage(.payloadTooLong), .malformedMessage(.headerTooLong): "oversize"
        case .malformedMessage: "malformed"
        case .heartbeatTimeout: "timeout"
        case .superseded: "superseded"
        default: nil
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

/// A connection id on a STREAM socket: which TCP connection a frame came from. Made up by
/// libzmq (never by the peer); opaque; printable as hex.
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: Data
    public init(_ bytes: Data) { self.bytes = bytes }
    public var description: String { bytes.map { String(format: "%02x", $0) }.joined() }
}

/// Monotonic seconds.
func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// One message on the wire: inside TLS, [u32 big-endian length][encoded message]. TCP (and so
/// TLS) is a byte stream, so the length tells where a message ends; MessageReassembler checks
/// it against MessageLimits before allocating.
enum SecureFraming {
    static let lengthBytes = 4

    /// Decrypts `bytes` of an established session and hands each whole message to `body`, in
    /// order, until `body` returns a failure. What the codec or the length prefix rejects is
    /// returned as `.malformedMessage`; TLS errors are thrown. Both ends read this way.
    static func readMessages(_ bytes: UnsafeRawBufferPointer, session: TLSSession, reassembler: MessageReassembler,
                             codec: MessageCodec, _ body: (_ message: Message, _ bytes: Int) -> LinkFailure?) throws -> LinkFailure? {
        var failure: LinkFailure?
        do {
            try session.withFrame(bytes) {
                while let plaintext = try reassembler.next(from: session) {
                    let message: Message
                    do throws(MessageDecodingError) { message = try codec.decode(plaintext) } catch {
                        failure = .malformedMessage(error)
                        return
                    }
                    failure = body(message, plaintext.count)
                    if failure != nil { return }
                }
            }
        } catch let error as MessageDecodingError {
            failure = .malformedMessage(error)
        }
        return failure
    }

    /// Encrypts `message` (length, head, then payload, no concatenation) into `session`'s
    /// output; the caller sends it (`PendingOutput.take`).
    static func encrypt(_ message: Message, codec: MessageCodec, session: TLSSession) throws {
        let head = codec.encodeHead(of: message)
        var payloadCount = 0
        if case .chunk(_, let payload) = message { payloadCount = payload.count }
        var framed = Data(capacity: lengthBytes + head.count)
        withUnsafeBytes(of: UInt32(head.count + payloadCount).bigEndian) { framed.append(contentsOf: $0) }
        framed.append(head)
        if case .chunk(_, let payload) = message {
            session.reserveOutput(forPlaintext: framed.count + payload.count)
            try framed.withUnsafeBytes { try session.write($0) }
            try payload.withUnsafeBytes { try session.write($0) }
        } else {
            try framed.withUnsafeBytes { try session.write($0) }
        }
    }
}

/// Records taken from a session and not yet handed to libzmq because the connection's pipe
/// was full (or closing): kept in order and retried, never dropped while the link lives.
struct PendingOutput {
    let buffer: UnsafeMutableRawPointer
    let count: Int
    let capacity: Int

    /// Takes what `session` has produced, if anything.
    static func take(from session: TLSSession) -> PendingOutput? {
        session.takeOutput().map { PendingOutput(buffer: $0.buffer, count: $0.count, capacity: $0.capacity) }
    }

    /// Hands the records to libzmq for connection `id` unless its pipe is full right now
    /// (false: nothing was sent and the buffer is still ours). On a throw the buffer has been
    /// released (the link is over anyway).
    func sendNow(on socket: ZMQSocket, id: Data) throws -> Bool {
        let queued: Bool
        do { queued = try socket.sendNow(id, more: true) } catch {
            discard()
            throw error
        }
        guard queued else { return false }
        // Owns the buffer from here, failure included.
        try socket.send(taking: buffer, count: count, capacity: capacity)
        return true
    }

    func discard() { BufferPool.shared.recycle(buffer, capacity: capacity) }
}
