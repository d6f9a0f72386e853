// The agent's end of the wire: a ZeroMQ STREAM socket (raw TCP) that connects once and carries
// one TLS 1.3 session to the aggregator, which must present a certificate for `serverName`
// signed by the federation CA. (SecureServer.swift says why STREAM.)

import CZMQ
import Foundation
import Logging

/// One TLS link to a SecureServer. Use it from one thread at a time (libzmq's rule).
/// After any failure, make a new SecureClient: a new connection needs a new TLS session.
public final class SecureClient: @unchecked Sendable {
    /// The link's protocol state; each transition is one case in `advance(with:)`.
    private enum State {
        case idle
        /// TCP connect under way; libzmq announces the connection with [id][empty].
        case connecting
        case handshaking(TLSSession, connection: Data)
        /// Handshake done on our side; the server has yet to check our certificate name.
        case awaitingAdmission(TLSSession, connection: Data)
        case established(TLSSession, connection: Data)
        case failed(LinkFailure)
    }

    public let endpoint: String
    public let serverName: String
    public let limits: MessageLimits
    public let heartbeat: HeartbeatPolicy
    private let socket: ZMQSocket
    private let context: TLSContext
    private let codec: MessageCodec
    private let reassembler: MessageReassembler
    private let logger: Logger
    private var state = State.idle
    private var lastReceived = 0.0
    private var lastSent = 0.0
    private var inbox: [Message] = []

    /// Throws TLSCredentialError when the certificate, key or CA cannot be used.
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
        self.reassembler = MessageReassembler(limits: limits)
        socket = try ZMQSocket(.stream)
        try socket.setOption(ZMQ_STREAM_NOTIFY, Int32(1))
        // A reconnect would carry a TLS session the server does not know; the link is reported
        // dead instead (closed connection or heartbeat timeout) and the caller makes a new client.
        try socket.setOption(ZMQ_RECONNECT_IVL, Int32(-1))
        // STREAM never drops bytes for a live connection whose pipe is full (that would break
        // TLS): the send is refused (EAGAIN) and `deliver` retries, bounded by the heartbeat timeout.
        try socket.setOption(ZMQ_SNDTIMEO, Int32(0))
        try socket.connect(endpoint)
    }

    public var isConnected: Bool {
        if case .established = state { true } else { false }
    }

    public func close() {
        state = .failed(.notConnected)
        socket.close()
    }

    /// Closes after giving the last messages sent `grace` seconds to leave: libzmq sends from
    /// its own thread, and a process that exits right after `send` loses what is still queued
    /// (an agent's final ERROR or COMMITTED). Messages that arrive meanwhile are dropped.
    public func close(grace: Double) {
        let end = monotonicSeconds() + grace
        while case .established = state, monotonicSeconds() < end {
            if (try? receive(timeout: max(0, end - monotonicSeconds()))) == nil { break }
        }
        try? socket.setLinger(milliseconds: Int32(grace * 1000))
        close()
    }

    /// Connects, runs the handshake and waits for the server's admission (its first heartbeat).
    /// Throws LinkFailure: `.handshake` (bad certificate either way), `.refusedByServer`
    /// (name not allowed), `.serverBusy` (turned away: retry later), `.connectionClosed`,
    /// `.handshakeTimeout` (also when no server listens: libzmq's own reconnection is off,
    /// so retry with a new SecureClient after a pause).
    public func connect(timeout: Double = 10) throws {
        guard case .idle = state else { throw LinkFailure.notConnected }
        state = .connecting
        let deadline = monotonicSeconds() + timeout
        while true {
            if case .established = state { break }
            let remaining = deadline - monotonicSeconds()
            guard remaining > 0 else { try fail(.handshakeTimeout(seconds: timeout)) }
            if try socket.waitReadable(timeoutMilliseconds: Int((remaining * 1000).rounded(.up))) {
                _ = try socket.receiveFrames(wait: false) { frames, _ in try advance(with: frames) }
            }
        }
        logger.info("connected", metadata: ["endpoint": "\(endpoint)", "server": "\(serverName)"])
    }

    /// Encrypts and sends one message.
    public func send(_ message: Message) throws {
        guard case .established(let session, let connection) = state else {
            if case .failed(let failure) = state { throw failure }
            throw LinkFailure.notConnected
        }
        do {
            try SecureFraming.encrypt(message, codec: codec, session: session)
            try deliver(session, connection: connection, readWhileWaiting: true)
            lastSent = monotonicSeconds()
        } catch let failure as LinkFailure {
            throw failure
        } catch let error as ZMQError {
            // EHOSTUNREACH: the connection is gone.
            try fail(error.code == EHOSTUNREACH ? .connectionClosed : .transport(error))
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
                // Drain what is ready: raw TCP arrives in pieces of at most 8 KiB.
                for _ in 0..<256 {
                    let got = try socket.receiveFrames(wait: false) { frames, _ in try advance(with: frames) }
                    if !got || !inbox.isEmpty { break }
                }
            }
        }
    }

    /// Test hook: encrypts arbitrary plaintext as if it were one framed message's bytes.
    func sendRawPlaintext(_ bytes: Data) throws {
        guard case .established(let session, let connection) = state else { throw LinkFailure.notConnected }
        try bytes.withUnsafeBytes { try session.write($0) }
        try deliver(session, connection: connection, readWhileWaiting: false)
    }

    /// Test hook: sends raw bytes on the connection, bypassing TLS.
    func sendRawBytes(_ bytes: Data) throws {
        guard case .established(_, let connection) = state else { throw LinkFailure.notConnected }
        try socket.send(connection, more: true)
        try socket.send(bytes)
    }

    /// Hands the session's records to libzmq. While the connection's pipe is full (or closing)
    /// it waits, reading what arrives if `readWhileWaiting` (that is how a close is noticed),
    /// for at most the heartbeat timeout: bytes are delayed, never dropped.
    private func deliver(_ session: TLSSession, connection: Data, readWhileWaiting: Bool) throws {
        guard let output = PendingOutput.take(from: session) else { return }
        let deadline = monotonicSeconds() + heartbeat.timeout
        // sendNow releases the buffer itself when it throws; anything else thrown here leaves it ours.
        while try !output.sendNow(on: socket, id: connection) {
            do {
                guard monotonicSeconds() < deadline else { throw LinkFailure.peerUnreachable(seconds: heartbeat.timeout) }
                if readWhileWaiting, try socket.waitReadable(timeoutMilliseconds: 5) {
                    _ = try socket.receiveFrames(wait: false) { frames, _ in try advance(with: frames) }
                    if case .failed(let failure) = state { throw failure }
                } else if !readWhileWaiting {
                    Thread.sleep(forTimeInterval: 0.005)
                }
            } catch {
                output.discard()
                if let failure = error as? LinkFailure, case .failed = state { throw failure }
                if let failure = error as? LinkFailure { try fail(failure) }
                throw error
            }
        }
    }

    private func fail(_ failure: LinkFailure) throws -> Never {
        state = .failed(failure)
        logger.notice("link failed", metadata: ["endpoint": "\(endpoint)", "reason": "\(failure)"])
        throw failure
    }

    /// One STREAM message ([connection id][bytes]; empty bytes: opened or closed), applied to
    /// the current state.
    private func advance(with frames: [UnsafeRawBufferPointer]) throws {
        guard frames.count == 2 else { return }  // STREAM delivers exactly two frames
        let bytes = frames[1]
        lastReceived = monotonicSeconds()
        switch state {
        case .idle, .failed:
            return
        case .connecting:
            guard bytes.count == 0 else { return }
            let connection = Data(frames[0])
            let session = try TLSSession(context: context, serverName: serverName)
            do {
                _ = try session.advanceHandshake()
                try deliver(session, connection: connection, readWhileWaiting: false)
            } catch let error as ZMQError {
                try fail(.transport(error))
            } catch {
                try fail(.handshake(error as? TLSError ?? .handshakeFailed("\(error)")))
            }
            state = .handshaking(session, connection: connection)
            lastSent = monotonicSeconds()
        case .handshaking(let session, let connection):
            guard Data(frames[0]) == connection else { return }
            guard bytes.count > 0 else { try fail(.connectionClosed) }
            do {
                // The admission heartbeat may have come in the same bytes as the handshake's end.
                let done = try session.withFrame(bytes) { try session.advanceHandshake() }
                try deliver(session, connection: connection, readWhileWaiting: false)
                guard done else { return }
                state = .awaitingAdmission(session, connection: connection)
                try admit(session, connection: connection)
            } catch let failure as LinkFailure {
                throw failure
            } catch let error as ZMQError {
                try fail(.transport(error))
            } catch TLSError.peerBusy {
                try fail(.serverBusy)
            } catch {
                try fail(.handshake(error as? TLSError ?? .handshakeFailed("\(error)")))
            }
        case .awaitingAdmission(let session, let connection):
            guard Data(frames[0]) == connection else { return }
            guard bytes.count > 0 else { try fail(.connectionClosed) }
            do {
                try session.withFrame(bytes) { try admit(session, connection: connection) }
            } catch let failure as LinkFailure {
                throw failure
            } catch {
                // The server rejected our certificate after we finished: its alert lands here.
                try fail(.handshake(.handshakeFailed((error as? TLSError).map { "\($0)" } ?? "\(error)")))
            }
        case .established(let session, let connection):
            guard Data(frames[0]) == connection else { return }
            guard bytes.count > 0 else { try fail(.connectionClosed) }
            let failure: LinkFailure?
            do {
                failure = try SecureFraming.readMessages(bytes, session: session, reassembler: reassembler, codec: codec) { message, _ in
                    switch message {
                    case .heartbeat: return nil
                    case .error(let report) where ["malformed", "oversize", "timeout", "superseded", "link"].contains(report.code):
                        // The server's link layer ended the link and says why.
                        return .errorFromPeer(code: report.code, message: report.message)
                    default:
                        inbox.append(message)
                        return nil
                    }
                }
            } catch {
                try fail(.record(error as? TLSError ?? .recordFailed("\(error)")))
            }
            if let failure {
                if case .malformedMessage = failure, let code = failure.errorCode {
                    // Tell the server why we hang up, while TLS still works.
                    if (try? SecureFraming.encrypt(.error(ErrorReport(code: code, message: failure.description)), codec: codec, session: session)) != nil,
                       let output = PendingOutput.take(from: session), (try? output.sendNow(on: socket, id: connection)) == false {
                        output.discard()
                    }
                }
                try fail(failure)
            }
        }
    }

    /// While awaiting admission (inside `withFrame`): a heartbeat admits us, REFUSED (or
    /// anything else) does not.
    private func admit(_ session: TLSSession, connection: Data) throws {
        let plaintext: Data?
        do { plaintext = try reassembler.next(from: session) } catch let error as MessageDecodingError { try fail(.malformedMessage(error)) }
        guard let plaintext else { return }
        let message: Message
        do { message = try codec.decode(plaintext) } catch { try fail(.malformedMessage(error)) }
        switch message {
        case .heartbeat:
            state = .established(session, connection: connection)
            // Anything that came right behind the admission heartbeat.
            while let more = try reassembler.next(from: session) {
                do {
                    let next = try codec.decode(more)
                    if case .heartbeat = next { continue }
                    inbox.append(next)
                } catch { try fail(.malformedMessage(error)) }
            }
        case .refused(let refused):
            try fail(.refusedByServer(reason: refused.reason))
        default:
            try fail(.refusedByServer(reason: "expected the admission heartbeat, got \(message.type)"))
        }
    }
}
