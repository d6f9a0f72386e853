// A hostile or scripted aggregator for agent tests: a real SecureServer (real TLS, real
// ZeroMQ sockets on loopback) driven from the test thread, which admits one real `fedmerge
// agent` process and sends it whatever the test scripts — including messages an honest
// aggregator never sends.

import Foundation
import Protocol
import XCTest

final class FakeAggregator {
    let server: SecureServer
    /// The admitted agent's link (after its handshake).
    private(set) var agent: PeerID?
    /// Every message the agent sent, in order (CHUNKs excluded).
    private(set) var received: [Message] = []
    /// Reply EVALUATED to every EVAL, as the real aggregator does once the EVAL is durable.
    var acknowledgeEvaluations = true

    /// Binds `endpoint` with the federation's aggregator certificate in `certificates`.
    init(endpoint: String, certificates: String) throws {
        server = try SecureServer(endpoint: endpoint, tls: TLSConfiguration(directory: certificates, name: "aggregator"), allow: { _ in true })
    }

    deinit { server.close() }

    /// Serves the link (heartbeats, recording) until `condition` holds over what the agent
    /// sent, at most `limit` seconds (a guard against hanging, not a speed check).
    @discardableResult
    func serve(limit: Double = 120, until condition: ([Message]) -> Bool) -> Bool {
        let end = Date().addingTimeInterval(limit)
        while Date() < end {
            if condition(received) { return true }
            guard let event = try? server.receive(timeout: 0.1) else { continue }
            switch event {
            case .connected(let peer, _):
                agent = peer
            case .message(let peer, let message):
                if message.type != .chunk { received.append(message) }
                if acknowledgeEvaluations, case .eval(let eval) = message {
                    try? server.send(.evaluated(Evaluated(round: eval.round, method: eval.method)), to: peer)
                }
            case .disconnected(let peer, _):
                if peer == agent { agent = nil }
            case .refused:
                break
            }
        }
        return condition(received)
    }

    /// Serves the link for `seconds` whatever happens (to let the agent act on what it got).
    func serve(seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        serve(limit: seconds + 1) { _ in Date() >= end }
    }

    func send(_ message: Message) throws {
        guard let agent else { throw LinkFailure.notConnected }
        try server.send(message, to: agent)
    }

    /// Announces `file` as the merged model of `method` and pushes its bytes (OFFER, every
    /// CHUNK, COMMIT) without waiting for RESUME or ACK, as a hostile aggregator would.
    func push(merged method: String, round: Int = 1, file: String, name: String, announce: [MergedFile]? = nil) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let hasher = SHA256Hasher()
        hasher.update(data)
        let digest = hasher.finalizeHex()
        let described = MergedFile(name: name, size: UInt64(data.count), sha256: digest)
        try send(.merged(Merged(round: round, method: method, files: announce ?? [described])))
        let id = UUID().uuidString
        try send(.offer(Offer(transferID: id, name: name, size: UInt64(data.count), sha256: digest)))
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + (1 << 20))
            try send(.chunk(Chunk(transferID: id, offset: UInt64(offset)), payload: data.subdata(in: offset..<end)))
            offset = end
        }
        try send(.commit(Commit(transferID: id, sha256: digest)))
    }

    /// Sends `file` as the merged model of `method` the way the real aggregator does
    /// (ChunkSender: OFFER, then chunks as the agent's RESUME/ACKs allow) until COMMITTED.
    @discardableResult
    func deliver(merged method: String, round: Int = 1, file: String, limit: Double = 120) throws -> Bool {
        let sender = try ChunkSender(path: file, name: method + ".safetensors")
        try send(.merged(Merged(round: round, method: method,
                                files: [MergedFile(name: sender.offer.name, size: sender.offer.size, sha256: sender.offer.sha256)])))
        let send: (Message) throws -> Void = { [self] in try self.send($0) }
        try sender.start(send: send)
        var handled = received.count
        return serve(limit: limit) { messages in
            while handled < messages.count {
                _ = try? sender.handle(messages[handled], send: send)
                handled += 1
            }
            return sender.isCommitted
        }
    }

    /// The ERROR reports the agent sent.
    var errors: [ErrorReport] {
        received.compactMap { if case .error(let report) = $0 { report } else { nil } }
    }

    /// The EVALs the agent sent.
    var evaluations: [Eval] {
        received.compactMap { if case .eval(let eval) = $0 { eval } else { nil } }
    }
}
