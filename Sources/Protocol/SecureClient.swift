// The agent's end of the wire: a DEALER socket carrying one TLS 1.3 session to the
// aggregator, which must present a certificate for `serverName` signed by the federation CA.

import CZMQ
import Foundation
import Logging

/// One TLS link to a SecureServer. Use it from one thread at a time (libzmq's rule).
/// After any failure, make a new SecureClient: a fresh socket is a fresh routing id.
public final class SecureClient: @unchecked Sendable {
    /// The link's protocol state; each transition is one case in `advance(with:)`.
    private enum State {
        case idle
        case handshaking(TLSSession)
        /// Handshake done on our side; the server has yet to check our certificate name.
        case awaitingAdmission(TLSSession)
        case established(TLSSession)
        case failed(LinkFailure)
    }

    public let endpoint: String
    public let serverName: String
    public let limits: MessageLimits
    public let heartbeat: HeartbeatPolicy
    private let socket: ZMQSocket
    private let context: TLSContext
    private let codec: MessageCodec
    private let logger: Logger
    private var state = State.idle
    private var lastReceived = 0.0
    private var lastSent = 0.0
    private var inbox: [Message] = []

    public init(endpoint: String, tls: TLSConfiguration, serverName: String,
                limits: MessageLimits = .standard, heartbeat: HeartbeatPolicy = .standard,
                logger: Logger = Logger(label: "fedmerge.wire.client")) throws {
        self.endpoint = endpoint
        self.serverName = serverName
        self.limits = limits
        self.heartbeat = heartbeat
        self.logger = logger
        self.context = try TLSContext(tls, role: .client)
        self.codec = MessageCodec(limits: limits)
        socket = try ZMQSocket(.dealer)
        try socket.setMaxMessageSize(SecureFraming.maxFrameBytes(limits))
        // A reconnect would get a new routing id and a TLS session the server does not know;
        // the link is reported dead instead (heartbeat timeout) and the caller makes a new client.
        try socket.setOption(ZMQ_RECONNECT_IVL, Int32(-1))
        // A DEALER with no connection blocks in send; bound that so a dead server surfaces as an error.
        try socket.setOption(ZMQ_SNDTIMEO, Int32(max(1, heartbeat.timeout * 1000)))
        try socket.connect(endpoint)
    }

    public var isConnected: Bool {
        if case .established = state { true } else { false }
    }

    public func close() {
        state = .failed(.notConnected)
        socket.close()
    }

    /// Runs the handshake and waits for the server's admission (its first heartbeat).
    /// Throws LinkFailure: `.handshake` (bad certificate either way), `.refusedByServer`
    /// (name not allowed), `.handshakeTimeout`.
    public func connect(timeout: Double = 10) throws {
        guard case .idle = state else { throw LinkFailure.notConnected }
        let session = try TLSSession(context: context, serverName: serverName)
        do {
            _ = try session.advanceHandshake()
            try SecureFraming.flush(session: session, socket: socket, routingID: nil)
        } catch {
            try fail(.handshake(error as? TLSError ?? .handshakeFailed("\(error)")))
        }
        state = .handshaking(session)
        lastSent = monotonicSeconds()
        let deadline = monotonicSeconds() + timeout
        while true {
            if case .established = state { break }
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0 else { try fail(.handshakeTimeout(seconds: timeout)) }
            if try socket.waitReadable(timeoutMilliseconds: Int((remaining * 1000).rounded(.up))) {
                _ = try socket.receiveFrames(wait: false) { frames, truncated in try advance(with: frames, truncated: truncated) }
            }
        }
        logger.info("connected", metadata: ["endpoint": "\(endpoint)", "server": "\(serverName)"])
    }

    /// Encrypts and sends one message.
    public func send(_ message: Message) throws {
        guard case .established(let session) = state else {
            if case .failed(let failure) = state { throw failure }
            throw LinkFailure.notConnected
        }
        do {
            try SecureFraming.seal(message, codec: codec, session: session, socket: socket, routingID: nil)
            lastSent = monotonicSeconds()
        } catch let error as ZMQError {
            // EAGAIN after ZMQ_SNDTIMEO: no connection to hand the frame to.
            try fail(error.code == EAGAIN ? .peerUnreachable(seconds: heartbeat.timeout) : .transport(error))
        } catch {
            try fail(.record(error as? TLSError ?? .recordFailed("\(error)")))
        }
    }

    /// Waits up to `timeout` seconds (nil: forever) for the next message; nil if none came.
    /// Sends heartbeats while waiting; throws LinkFailure when the link is dead.
    public func receive(timeout: Double?) throws -> Message? {
        let deadline = timeout.map { monotonicSeconds() + $0 }
        while true {
            if !inbox.isEmpty { return inbox.removeFirst() }
            if case .failed(let failure) = state { throw failure }
            guard case .established = state else { throw LinkFailure.notConnected }
            let now = monotonicSeconds()
            if now - lastReceived > heartbeat.timeout { try fail(.heartbeatTimeout(seconds: heartbeat.timeout)) }
            if now - lastSent >= heartbeat.interval { try send(.heartbeat) }
            if let deadline, now >= deadline { return nil }
            var wait = heartbeat.interval / 2
            if let deadline { wait = min(wait, deadline - now) }
            if try socket.waitReadable(timeoutMilliseconds: max(0, Int((wait * 1000).rounded(.up)))) {
                _ = try socket.receiveFrames(wait: false) { frames, truncated in try advance(with: frames, truncated: truncated) }
            }
        }
    }

    /// Test hook: encrypts arbitrary plaintext as if it were one message.
    func sendRawPlaintext(_ bytes: Data) throws {
        guard case .established(let session) = state else { throw LinkFailure.notConnected }
        try bytes.withUnsafeBytes { try session.write($0) }
        try SecureFraming.flush(session: session, socket: socket, routingID: nil)
    }

    /// Test hook: sends raw bytes as a frame, bypassing TLS.
    func sendRawFrame(_ bytes: Data) throws {
        try socket.send(bytes)
    }

    private func fail(_ failure: LinkFailure) throws -> Never {
        state = .failed(failure)
        logger.notice("link failed", metadata: ["endpoint": "\(endpoint)", "reason": "\(failure)"])
        throw failure
    }

    /// One frame from the server, applied to the current state.
    private func advance(with frames: [UnsafeRawBufferPointer], truncated: Bool) throws {
        guard frames.count == 1, !truncated else { try fail(.malformedFrames(count: frames.count)) }
        lastReceived = monotonicSeconds()
        switch state {
        case .idle, .failed:
            return
        case .handshaking(let session):
            do {
                try session.feed(frames[0])
                let done = try session.advanceHandshake()
                try SecureFraming.flush(session: session, socket: socket, routingID: nil)
                guard done else { return }
                state = .awaitingAdmission(session)
                // The admission heartbeat may have come in the same frame.
                try admit(session, plaintext: try session.readPlaintext())
            } catch let failure as LinkFailure {
                throw failure
            } catch let error as ZMQError {
                try fail(.transport(error))
            } catch {
                try fail(.handshake(error as? TLSError ?? .handshakeFailed("\(error)")))
            }
        case .awaitingAdmission(let session):
            do {
                try session.feed(frames[0])
                try admit(session, plaintext: try session.readPlaintext())
            } catch let failure as LinkFailure {
                throw failure
            } catch {
                // The server rejected our certificate after we finished: its alert lands here.
                try fail(.handshake(.handshakeFailed((error as? TLSError).map { "\($0)" } ?? "\(error)")))
            }
        case .established(let session):
            let plaintext: Data?
            do {
                try session.feed(frames[0])
                plaintext = try session.readPlaintext()
            } catch {
                try fail(.record(error as? TLSError ?? .recordFailed("\(error)")))
            }
            guard let plaintext else { return }
            do {
                let message = try codec.decode(plaintext)
                if case .heartbeat = message { return }
                inbox.append(message)
            } catch {
                try fail(.malformedMessage(error))
            }
        }
    }

    /// While awaiting admission: a heartbeat admits us, REFUSED (or anything else) does not.
    private func admit(_ session: TLSSession, plaintext: Data?) throws {
        guard let plaintext else { return }
        let message: Message
        do { message = try codec.decode(plaintext) } catch { try fail(.malformedMessage(error)) }
        switch message {
        case .heartbeat:
            state = .established(session)
        case .refused(let refused):
            try fail(.refusedByServer(reason: refused.reason))
        default:
            try fail(.refusedByServer(reason: "expected the admission heartbeat, got \(message.type)"))
        }
    }
}
