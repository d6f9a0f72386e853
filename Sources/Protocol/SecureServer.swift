// The aggregator's end of the wire: a ROUTER socket with one TLS 1.3 session per peer
// routing id, an allow-list on certificate names, heartbeats, and events for a daemon loop.

import CZMQ
import Foundation
import Logging

/// What `SecureServer.receive` reports.
public enum ServerEvent: Sendable, Equatable {
    /// The peer completed the handshake with a certificate named `name` that the allow-list admits.
    case connected(PeerID, name: String)
    case message(PeerID, Message)
    /// An admitted peer is gone (heartbeat timeout, TLS failure, malformed message); all its state is dropped.
    case disconnected(PeerID, LinkFailure)
    /// A peer was turned away before admission; no state is kept.
    /// (An admitted peer whose name connects again is `.disconnected(old, .superseded(by: new))`,
    /// reported before the new `.connected`.)
    case refused(PeerID, LinkFailure)
}

/// One ROUTER socket serving many TLS peers. Use it from one thread at a time (libzmq's rule);
/// `@unchecked Sendable` only so the owning thread can be chosen after creation.
public final class SecureServer: @unchecked Sendable {
    /// A peer's protocol state; every transition is one case of `handle(frames:)`.
    private enum PeerState {
        case handshaking(TLSSession, since: Double)
        case established(TLSSession, name: String)
    }

    private struct Peer {
        var state: PeerState
        var lastReceived: Double
        var lastSent: Double
    }

    public let endpoint: String
    public let limits: MessageLimits
    public let heartbeat: HeartbeatPolicy
    public let maxPendingHandshakes: Int
    private let socket: ZMQSocket
    private let context: TLSContext
    private let codec: MessageCodec
    private let allow: (String) -> Bool
    private var logger: Logger
    private var peers: [PeerID: Peer] = [:]
    private var events: [ServerEvent] = []
    private var nextEvent = 0

    /// Binds a ROUTER to `endpoint` (`tcp://127.0.0.1:*` picks a free port; read `endpoint`).
    /// `allow` decides, from the verified certificate name, who may stay connected.
    public init(endpoint: String, tls: TLSConfiguration, allow: @escaping (String) -> Bool,
                limits: MessageLimits = .standard, heartbeat: HeartbeatPolicy = .standard,
                maxPendingHandshakes: Int = 64, logger: Logger = Logger(label: "fedmerge.wire.server")) throws {
        self.context = try TLSContext(tls, role: .server)
        self.codec = MessageCodec(limits: limits)
        self.limits = limits
        self.heartbeat = heartbeat
        self.maxPendingHandshakes = maxPendingHandshakes
        self.allow = allow
        self.logger = logger
        socket = try ZMQSocket(.router)
        try socket.setMaxMessageSize(SecureFraming.maxFrameBytes(limits))
        // Fail a send to a vanished peer instead of dropping it silently.
        try socket.setOption(ZMQ_ROUTER_MANDATORY, Int32(1))
        // With ROUTER_MANDATORY a peer whose queue is full blocks send; never wait on one for long.
        try socket.setOption(ZMQ_SNDTIMEO, Int32(max(1, heartbeat.timeout * 1000)))
        try socket.bind(endpoint)
        self.endpoint = try socket.lastEndpoint()
        self.logger[metadataKey: "endpoint"] = "\(self.endpoint)"
    }

    /// Names of the admitted peers.
    public var connectedPeers: [PeerID: String] {
        peers.compactMapValues { if case .established(_, let name) = $0.state { name } else { nil } }
    }

    public func close() {
        peers.removeAll()
        socket.close()
    }

    /// Waits up to `timeout` seconds (nil: forever) for the next event; nil if none came.
    /// Call it regularly: it also sends heartbeats and expires silent peers.
    public func receive(timeout: Double?) throws -> ServerEvent? {
        let deadline = timeout.map { monotonicSeconds() + $0 }
        while true {
            if let event = popEvent() { return event }
            try pulse()
            if let event = popEvent() { return event }
            let now = monotonicSeconds()
            if let deadline, now >= deadline { return nil }
            var wait = heartbeat.interval / 2
            if let deadline { wait = min(wait, deadline - now) }
            if try socket.waitReadable(timeoutMilliseconds: max(0, Int((wait * 1000).rounded(.up)))) {
                // Drain what is ready (bounded so heartbeats keep their schedule).
                for _ in 0..<64 {
                    let got = try socket.receiveFrames(wait: false) { frames, truncated in
                        handle(frames: frames, truncated: truncated)
                    }
                    if !got { break }
                }
            }
        }
    }

    /// Encrypts and sends `message` to an admitted peer.
    public func send(_ message: Message, to peer: PeerID) throws {
        guard let entry = peers[peer], case .established(let session, _) = entry.state else { throw LinkFailure.unknownPeer(peer) }
        do {
            try SecureFraming.seal(message, codec: codec, session: session, socket: socket, routingID: peer.bytes)
            peers[peer]?.lastSent = monotonicSeconds()
        } catch let error as ZMQError {
            // EHOSTUNREACH (ROUTER_MANDATORY): the peer's connection is gone; EAGAIN: stuck past SNDTIMEO.
            let failure: LinkFailure = error.code == EAGAIN ? .peerUnreachable(seconds: heartbeat.timeout) : .transport(error)
            drop(peer, failure, admitted: true)
            throw failure
        } catch let error as TLSError {
            drop(peer, .record(error), admitted: true)
            throw LinkFailure.record(error)
        }
    }

    /// Forgets a peer (its next frame starts a new handshake, which it will fail).
    public func disconnect(_ peer: PeerID) {
        peers[peer] = nil
    }

    // MARK: internals

    private func popEvent() -> ServerEvent? {
        guard nextEvent < events.count else {
            if !events.isEmpty { events.removeAll(keepingCapacity: true); nextEvent = 0 }
            return nil
        }
        defer { nextEvent += 1 }
        return events[nextEvent]
    }

    /// Heartbeats to quiet admitted peers; expiry of silent or stalled ones.
    private func pulse() throws {
        let now = monotonicSeconds()
        for (peer, entry) in peers {
            switch entry.state {
            case .handshaking(_, let since):
                if now - since > heartbeat.timeout { drop(peer, .handshakeTimeout(seconds: heartbeat.timeout), admitted: false) }
            case .established:
                if now - entry.lastReceived > heartbeat.timeout {
                    drop(peer, .heartbeatTimeout(seconds: heartbeat.timeout), admitted: true)
                } else if now - entry.lastSent >= heartbeat.interval {
                    try? send(.heartbeat, to: peer)
                }
            }
        }
    }

    private func drop(_ peer: PeerID, _ failure: LinkFailure, admitted: Bool) {
        peers[peer] = nil
        if admitted {
            logger.notice("peer disconnected", metadata: ["peer": "\(peer)", "reason": "\(failure)"])
            events.append(.disconnected(peer, failure))
        } else {
            logger.notice("peer refused", metadata: ["peer": "\(peer)", "reason": "\(failure)"])
            events.append(.refused(peer, failure))
        }
    }

    /// One ZeroMQ message from the ROUTER: [routing id][TLS records].
    private func handle(frames: [UnsafeRawBufferPointer], truncated: Bool) {
        guard let first = frames.first else { return }
        let peer = PeerID(Data(first))
        let now = monotonicSeconds()
        guard frames.count == 2, !truncated else {
            drop(peer, .malformedFrames(count: frames.count - 1), admitted: peers[peer].map { if case .established = $0.state { true } else { false } } ?? false)
            return
        }
        let bytes = frames[1]
        if peers[peer] == nil {
            let pending = peers.values.filter { if case .handshaking = $0.state { true } else { false } }.count
            guard pending < maxPendingHandshakes else {
                drop(peer, .tooManyPendingHandshakes(limit: maxPendingHandshakes), admitted: false)
                return
            }
            do {
                peers[peer] = Peer(state: .handshaking(try TLSSession(context: context), since: now), lastReceived: now, lastSent: now)
            } catch {
                drop(peer, .handshake(error as? TLSError ?? .contextSetup("\(error)")), admitted: false)
                return
            }
        }
        guard var entry = peers[peer] else { return }
        entry.lastReceived = now
        peers[peer] = entry

        switch entry.state {
        case .handshaking(let session, _):
            do {
                try session.feed(bytes)
                let done = try session.advanceHandshake()
                try SecureFraming.flush(session: session, socket: socket, routingID: peer.bytes)
                guard done else { return }
            } catch let error as ZMQError {
                drop(peer, .transport(error), admitted: false)
                return
            } catch {
                // Pass the alert (if OpenSSL wrote one) so the peer learns why, then forget it.
                try? SecureFraming.flush(session: session, socket: socket, routingID: peer.bytes)
                drop(peer, .handshake(error as? TLSError ?? .handshakeFailed("\(error)")), admitted: false)
                return
            }
            guard let name = session.peerName else {
                drop(peer, .noPeerName, admitted: false)
                return
            }
            guard allow(name) else {
                let failure = LinkFailure.nameNotAllowed(name)
                try? SecureFraming.seal(.refused(Refused(reason: failure.description)), codec: codec, session: session, socket: socket, routingID: peer.bytes)
                drop(peer, failure, admitted: false)
                return
            }
            // One link per certificate name: a daemon that reconnects replaces its old link,
            // whose late frames are then dropped instead of interleaving with the new ones.
            for (other, entry) in peers where other != peer {
                if case .established(_, let otherName) = entry.state, otherName == name {
                    drop(other, .superseded(by: peer), admitted: true)
                }
            }
            peers[peer]?.state = .established(session, name: name)
            logger.info("peer connected", metadata: ["peer": "\(peer)", "name": "\(name)"])
            events.append(.connected(peer, name: name))
            // The first heartbeat tells the client it was admitted (see SecureClient.connect).
            try? send(.heartbeat, to: peer)

        case .established(let session, let name):
            let plaintext: Data?
            do {
                try session.feed(bytes)
                plaintext = try session.readPlaintext()
            } catch {
                drop(peer, .record(error as? TLSError ?? .recordFailed("\(error)")), admitted: true)
                return
            }
            guard let plaintext else { return }
            do {
                let message = try codec.decode(plaintext)
                if case .heartbeat = message { return }
                logger.trace("message", metadata: ["peer": "\(peer)", "name": "\(name)", "type": "\(message.type)", "bytes": "\(plaintext.count)"])
                events.append(.message(peer, message))
            } catch {
                let failure = LinkFailure.malformedMessage(error)
                try? SecureFraming.seal(.error(ErrorReport(code: "malformed", message: failure.description)), codec: codec, session: session, socket: socket, routingID: peer.bytes)
                drop(peer, failure, admitted: true)
            }
        }
    }
}
