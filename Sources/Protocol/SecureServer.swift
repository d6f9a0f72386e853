// The aggregator's end of the wire: a ZeroMQ STREAM socket (raw TCP) with one TLS 1.3 session
// per connection, an allow-list on certificate names, bounded handshake work, heartbeats, and
// events for a daemon loop.
//
// Why STREAM and not ROUTER: a ROUTER takes a routing id a peer announces verbatim, and libzmq
// 4.3 aborts the whole process (socket_base.cpp:2130) when it later auto-assigns that id to
// another peer; the next auto id is predictable, so any peer without a certificate could stop
// the aggregator (issue 17, item 1). A STREAM socket makes up every connection id itself and
// can close a connection ([id][empty]), which a ROUTER cannot (needed to shed handshakes).

import CZMQ
import Foundation
import Logging

/// What `SecureServer.receive` reports.
public enum ServerEvent: Sendable, Equatable {
    /// The peer completed the handshake with a certificate named `name` that the allow-list admits.
    case connected(PeerID, name: String)
    case message(PeerID, Message)
    /// An admitted peer is gone (heartbeat timeout, TLS failure, malformed message, closed
    /// connection); all its state is dropped.
    case disconnected(PeerID, LinkFailure)
    /// A connection was turned away before admission; no state is kept.
    /// (An admitted peer whose name connects again is `.disconnected(old, .superseded(by: new))`,
    /// reported before the new `.connected`.)
    case refused(PeerID, LinkFailure)
}

/// One STREAM socket serving many TLS peers. Use it from one thread at a time (libzmq's rule);
/// `@unchecked Sendable` only so the owning thread can be chosen after creation.
///
/// Handshakes cannot crowd out admitted links: at most `maxPendingHandshakes` are pending (a
/// newer connection evicts the oldest), each may send `maxHandshakeBytes` and take
/// `handshakeTimeout` seconds, and their crypto runs only after every ready frame of admitted
/// links was served, `handshakesPerPass` at a time.
public final class SecureServer: @unchecked Sendable {
    /// A connection's protocol state; every transition is in `accept`, `runHandshake` or `end`.
    private enum PeerState {
        case handshaking(TLSSession)
        case established(TLSSession, name: String)
    }

    private struct Peer {
        var state: PeerState
        let reassembler: MessageReassembler
        var lastReceived: Double
        var lastSent: Double
        /// Ciphertext bytes each way and when the connection began, for the log line at its end.
        var bytesIn = 0
        var bytesOut = 0
        let since: Double
        /// Handshake bytes received and not yet given to OpenSSL (see `handshakeQueue`).
        var handshakeInput = Data()
        var queued = false
        /// Whether we sent this connection anything yet (a BusyAlert is readable only before).
        var answered = false
        /// Records its pipe could not take yet, in order, and since when the first has waited.
        var outbox: [PendingOutput] = []
        var stuckSince: Double?

        var isAdmitted: Bool { if case .established = state { true } else { false } }
    }

    /// How a connection is left when it ends.
    private enum Farewell {
        case none
        /// An ERROR message (the TLS session still works).
        case error
        /// BusyAlert, if the handshake was never answered.
        case busyAlert
    }

    public let endpoint: String
    public let limits: MessageLimits
    public let heartbeat: HeartbeatPolicy
    public let maxPendingHandshakes: Int
    public let handshakeTimeout: Double
    public let maxHandshakeBytes: Int
    /// Handshake steps (one OpenSSL call each) per pass of the receive loop.
    public let handshakesPerPass = 8
    private let socket: ZMQSocket
    private let context: TLSContext
    private let codec: MessageCodec
    private let allow: (String) -> Bool
    private var logger: Logger
    private var peers: [PeerID: Peer] = [:]
    /// Connections with handshake input waiting, oldest first.
    private var handshakeQueue: [PeerID] = []
    /// Connections we ended, and when to close them: a moment after the last words (alert,
    /// REFUSED, ERROR) were queued, since libzmq may drop what is still in flight when a
    /// STREAM connection is closed (libzmq issue 4763). Their frames are ignored meanwhile.
    private var closing: [Data: Double] = [:]
    /// How long an ended connection stays open for its last words to leave.
    static let closeGrace = 0.25
    private var events: [ServerEvent] = []
    private var nextEvent = 0

    /// Binds to `endpoint` (`tcp://127.0.0.1:*` picks a free port; read `endpoint`).
    /// `allow` decides, from the verified certificate name, who may stay connected.
    /// Throws TLSCredentialError when the certificate, key or CA cannot be used.
    public init(endpoint: String, tls: TLSConfiguration, allow: @escaping (String) -> Bool,
                limits: MessageLimits = .standard, heartbeat: HeartbeatPolicy = .standard,
                maxPendingHandshakes: Int = 64, handshakeTimeout: Double = 5, maxHandshakeBytes: Int = 64 << 10,
                logger: Logger = Logger(label: "fedmerge.wire.server")) throws {
        self.context = try TLSContext(tls, role: .server)
        self.codec = MessageCodec(limits: limits)
        self.limits = limits
        self.heartbeat = heartbeat
        self.maxPendingHandshakes = max(1, maxPendingHandshakes)
        self.handshakeTimeout = handshakeTimeout
        self.maxHandshakeBytes = maxHandshakeBytes
        self.allow = allow
        self.logger = logger
        socket = try ZMQSocket(.stream)
        // [id][empty] when a connection opens or ends: how we learn of both.
        try socket.setOption(ZMQ_STREAM_NOTIFY, Int32(1))
        // Sends never wait (see `transmit`): one slow or closing connection must not stall the rest.
        try socket.setOption(ZMQ_SNDTIMEO, Int32(0))
        try socket.bind(endpoint)
        self.endpoint = try socket.lastEndpoint()
        self.logger[metadataKey: "endpoint"] = "\(self.endpoint)"
    }

    /// Names of the admitted peers.
    public var connectedPeers: [PeerID: String] {
        peers.compactMapValues { if case .established(_, let name) = $0.state { name } else { nil } }
    }

    public func close() {
        for entry in peers.values { entry.outbox.forEach { $0.discard() } }
        peers.removeAll()
        handshakeQueue.removeAll()
        closing.removeAll()
        socket.close()
    }

    /// Waits up to `timeout` seconds (nil: forever) for the next event; nil if none came.
    /// Call it regularly: it also sends heartbeats, runs handshakes and expires silent peers.
    public func receive(timeout: Double?) throws -> ServerEvent? {
        let deadline = timeout.map { monotonicSeconds() + $0 }
        while true {
            if let event = popEvent() { return event }
            try pulse()
            if let event = popEvent() { return event }
            let now = monotonicSeconds()
            if let deadline, now >= deadline { return nil }
            var wait = handshakeQueue.isEmpty ? heartbeat.interval / 2 : 0
            // Output waiting for a pipe: look again soon (a STREAM socket never polls writable).
            if peers.values.contains(where: { !$0.outbox.isEmpty }) { wait = min(wait, 0.005) }
            if !closing.isEmpty { wait = min(wait, 0.05) }
            if let deadline { wait = min(wait, deadline - now) }
            if try socket.waitReadable(timeoutMilliseconds: max(0, Int((wait * 1000).rounded(.up)))) {
                // Drain what is ready (bounded so heartbeats keep their schedule). Admitted
                // links are served here; handshake bytes only queue up.
                for _ in 0..<256 {
                    let got = try socket.receiveFrames(wait: false) { frames, _ in handle(frames: frames) }
                    if !got { break }
                }
            }
            runHandshakes()
            flushOutboxes()
        }
    }

    /// Encrypts and sends `message` to an admitted peer.
    public func send(_ message: Message, to peer: PeerID) throws {
        guard let entry = peers[peer], case .established(let session, _) = entry.state else { throw LinkFailure.unknownPeer(peer) }
        do {
            try SecureFraming.encrypt(message, codec: codec, session: session)
            let bytes = try transmit(session, to: peer)
            peers[peer]?.lastSent = monotonicSeconds()
            peers[peer]?.bytesOut += bytes
        } catch let error as ZMQError {
            // EHOSTUNREACH: the connection is gone.
            let failure: LinkFailure = error.code == EHOSTUNREACH ? .connectionClosed : .transport(error)
            end(peer, failure, farewell: .none)
            throw failure
        } catch let error as TLSError {
            end(peer, .record(error), farewell: .none)
            throw LinkFailure.record(error)
        }
    }

    /// Forgets a peer and closes its connection (after what was sent to it, e.g. an ERROR).
    public func disconnect(_ peer: PeerID) {
        guard let entry = peers.removeValue(forKey: peer) else { return }
        entry.outbox.forEach { $0.discard() }
        close(peer.bytes)
    }

    // MARK: internals

    /// Hands `session`'s records for `peer` to libzmq, or queues them behind what already
    /// waits: a full pipe delays bytes, it never drops one (a lost record breaks TLS).
    @discardableResult
    private func transmit(_ session: TLSSession, to peer: PeerID) throws -> Int {
        guard let output = PendingOutput.take(from: session) else { return 0 }
        guard peers[peer] != nil else { output.discard(); return 0 }
        if peers[peer]!.outbox.isEmpty {
            if try output.sendNow(on: socket, id: peer.bytes) { return output.count }
            peers[peer]!.stuckSince = monotonicSeconds()
        }
        peers[peer]!.outbox.append(output)
        return output.count
    }

    /// Retries queued records, in order, as far as the pipes take them; closes what is due.
    private func flushOutboxes() {
        let now = monotonicSeconds()
        for (id, due) in closing where due <= now {
            if socket.closeConnection(id) { closing[id] = nil }
        }
        for (peer, entry) in peers where !entry.outbox.isEmpty {
            var sent = 0
            do {
                while sent < entry.outbox.count, try entry.outbox[sent].sendNow(on: socket, id: peer.bytes) { sent += 1 }
            } catch {
                // Sent ones and the failed one are libzmq's (released); drop only the rest.
                peers[peer]!.outbox.removeFirst(sent + 1)
                end(peer, .connectionClosed, farewell: .none)
                continue
            }
            guard sent > 0 else { continue }
            peers[peer]!.outbox.removeFirst(sent)
            peers[peer]!.stuckSince = peers[peer]!.outbox.isEmpty ? nil : monotonicSeconds()
        }
    }

    /// Closes a connection after `closeGrace` (at once if thousands are already waiting).
    private func close(_ id: Data) {
        guard closing.count < 4096 else {
            if !socket.closeConnection(id) { closing[id] = monotonicSeconds() }
            return
        }
        closing[id] = monotonicSeconds() + Self.closeGrace
    }

    private func popEvent() -> ServerEvent? {
        guard nextEvent < events.count else {
            if !events.isEmpty { events.removeAll(keepingCapacity: true); nextEvent = 0 }
            return nil
        }
        defer { nextEvent += 1 }
        return events[nextEvent]
    }

    /// Heartbeats to quiet admitted peers; expiry of silent peers and stalled handshakes.
    private func pulse() throws {
        let now = monotonicSeconds()
        for (peer, entry) in peers {
            if let stuck = entry.stuckSince, now - stuck > heartbeat.timeout {
                end(peer, .peerUnreachable(seconds: heartbeat.timeout), farewell: .none)
                continue
            }
            switch entry.state {
            case .handshaking:
                if now - entry.since > handshakeTimeout { end(peer, .handshakeTimeout(seconds: handshakeTimeout), farewell: .busyAlert) }
            case .established:
                if now - entry.lastReceived > heartbeat.timeout {
                    end(peer, .heartbeatTimeout(seconds: heartbeat.timeout), farewell: .error)
                } else if now - entry.lastSent >= heartbeat.interval {
                    try? send(.heartbeat, to: peer)
                }
            }
        }
    }

    /// Ends a connection: says why if it still can (`farewell`), closes it, reports it.
    private func end(_ peer: PeerID, _ failure: LinkFailure, farewell: Farewell) {
        guard let entry = peers.removeValue(forKey: peer) else { return }
        entry.outbox.forEach { $0.discard() }
        // A farewell only where it can arrive in order: nothing queued before it.
        switch (farewell, entry.state) {
        case (.error, .established(let session, _)) where entry.outbox.isEmpty:
            let report = ErrorReport(code: failure.errorCode ?? "link", message: failure.description)
            if (try? SecureFraming.encrypt(.error(report), codec: codec, session: session)) != nil,
               let output = PendingOutput.take(from: session), (try? output.sendNow(on: socket, id: peer.bytes)) == false {
                output.discard()
            }
        case (.busyAlert, .handshaking) where !entry.answered:
            if (try? socket.sendNow(peer.bytes, more: true)) == true { try? socket.send(BusyAlert.record) }
        default:
            break
        }
        if failure != .connectionClosed { close(peer.bytes) }
        if entry.isAdmitted {
            logger.notice("peer disconnected", metadata: [
                "peer": "\(peer)", "reason": "\(failure)", "bytesIn": "\(entry.bytesIn)", "bytesOut": "\(entry.bytesOut)",
                "seconds": "\(String(format: "%.1f", monotonicSeconds() - entry.since))",
            ])
            events.append(.disconnected(peer, failure))
        } else {
            logger.notice("peer refused", metadata: ["peer": "\(peer)", "reason": "\(failure)"])
            events.append(.refused(peer, failure))
        }
    }

    /// One message from the STREAM socket: [connection id][bytes], where empty bytes mean the
    /// connection just opened (unknown id) or closed (known id).
    private func handle(frames: [UnsafeRawBufferPointer]) {
        guard frames.count == 2 else { return }  // STREAM delivers exactly two frames
        let peer = PeerID(Data(frames[0]))
        let bytes = frames[1]
        guard bytes.count > 0 else {
            if closing.removeValue(forKey: peer.bytes) != nil { return }  // it left before we closed it
            if peers[peer] == nil { accept(peer) } else { end(peer, .connectionClosed, farewell: .none) }
            return
        }
        // Bytes of a connection we already ended: it is being closed.
        guard var entry = peers[peer] else { return }
        entry.lastReceived = monotonicSeconds()
        entry.bytesIn += bytes.count
        switch entry.state {
        case .handshaking:
            guard entry.handshakeInput.count + bytes.count <= maxHandshakeBytes else {
                peers[peer] = entry
                end(peer, .handshakeTooLarge(limit: maxHandshakeBytes), farewell: .busyAlert)
                return
            }
            entry.handshakeInput.append(contentsOf: bytes)
            if !entry.queued {
                entry.queued = true
                handshakeQueue.append(peer)
            }
            peers[peer] = entry
        case .established(let session, let name):
            peers[peer] = entry
            readMessages(from: peer, session: session, name: name, reassembler: entry.reassembler, bytes: bytes)
        }
    }

    /// A new connection: a pending handshake, the oldest one evicted if the table is full.
    private func accept(_ peer: PeerID) {
        var pending = 0
        var oldest: (PeerID, Double)?
        for (id, entry) in peers where !entry.isAdmitted {
            pending += 1
            if oldest == nil || entry.since < oldest!.1 { oldest = (id, entry.since) }
        }
        if pending >= maxPendingHandshakes, let (victim, _) = oldest {
            end(victim, .evicted(limit: maxPendingHandshakes), farewell: .busyAlert)
        }
        let now = monotonicSeconds()
        do {
            peers[peer] = Peer(state: .handshaking(try TLSSession(context: context)), reassembler: MessageReassembler(limits: limits),
                               lastReceived: now, lastSent: now, since: now)
        } catch {
            socket.closeConnection(peer.bytes)
            logger.error("cannot start a TLS session", metadata: ["peer": "\(peer)", "reason": "\(error)"])
        }
    }

    /// Runs queued handshake input through OpenSSL, oldest connection first, a few per pass.
    private func runHandshakes() {
        var steps = 0
        while steps < handshakesPerPass, !handshakeQueue.isEmpty {
            let peer = handshakeQueue.removeFirst()
            guard var entry = peers[peer], case .handshaking(let session) = entry.state else { continue }
            let input = entry.handshakeInput
            entry.handshakeInput = Data()
            entry.queued = false
            peers[peer] = entry
            steps += 1
            runHandshake(peer, session: session, input: input)
        }
    }

    private func runHandshake(_ peer: PeerID, session: TLSSession, input: Data) {
        do {
            let done = try input.withUnsafeBytes { raw in try session.withFrame(raw) { try session.advanceHandshake() } }
            if try transmit(session, to: peer) > 0 { peers[peer]?.answered = true }
            guard done else { return }
        } catch let error as ZMQError {
            end(peer, .transport(error), farewell: .none)
            return
        } catch {
            // Pass the alert (if OpenSSL wrote one) so the peer learns why, then close.
            _ = try? transmit(session, to: peer)
            end(peer, .handshake(error as? TLSError ?? .handshakeFailed("\(error)")), farewell: .none)
            return
        }
        guard let name = session.peerName else {
            end(peer, .noPeerName, farewell: .none)
            return
        }
        guard allow(name) else {
            let failure = LinkFailure.nameNotAllowed(name)
            if (try? SecureFraming.encrypt(.refused(Refused(reason: failure.description)), codec: codec, session: session)) != nil {
                _ = try? transmit(session, to: peer)
            }
            end(peer, failure, farewell: .none)
            return
        }
        // One link per certificate name: a daemon that reconnects replaces its old link.
        for (other, entry) in peers where other != peer {
            if case .established(_, let otherName) = entry.state, otherName == name {
                end(other, .superseded(by: peer), farewell: .error)
            }
        }
        peers[peer]?.state = .established(session, name: name)
        logger.info("peer connected", metadata: ["peer": "\(peer)", "name": "\(loggable(name))"])
        events.append(.connected(peer, name: name))
        // The first heartbeat tells the client it was admitted (see SecureClient.connect).
        try? send(.heartbeat, to: peer)
        // Records that came with the handshake's last flight.
        if let reassembler = peers[peer]?.reassembler {
            readMessages(from: peer, session: session, name: name, reassembler: reassembler, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    /// Decrypts `bytes` of an admitted link and reports each whole message. A message the
    /// codec rejects ends the link with an ERROR naming why; undecryptable bytes end it bare.
    private func readMessages(from peer: PeerID, session: TLSSession, name: String, reassembler: MessageReassembler, bytes: UnsafeRawBufferPointer) {
        let failure: LinkFailure?
        do {
            failure = try SecureFraming.readMessages(bytes, session: session, reassembler: reassembler, codec: codec) { message, size in
                if case .heartbeat = message { return nil }
                logger.trace("message", metadata: ["peer": "\(peer)", "name": "\(loggable(name))", "type": "\(message.type)", "bytes": "\(size)"])
                events.append(.message(peer, message))
                return nil
            }
        } catch {
            end(peer, .record(error as? TLSError ?? .recordFailed("\(error)")), farewell: .none)
            return
        }
        if let failure { end(peer, failure, farewell: .error) }
    }
}
