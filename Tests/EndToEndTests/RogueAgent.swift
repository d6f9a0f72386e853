// A malicious member for end-to-end tests: it holds a real certificate of the federation and
// speaks the real protocol (SecureClient, ChunkSender) to a real aggregator process, but sends
// whatever the test tells it to — tampered uploads, forged EVALs, oversized offers.

import Foundation
import LinAlg
import Protocol
import SafeTensors
import XCTest

final class RogueAgent {
    let name: String
    let federation: Federation
    private(set) var client: SecureClient?

    init(_ name: String, in federation: Federation) {
        self.name = name
        self.federation = federation
    }

    /// Connects with this agent's certificate and sends HELLO with the round's base fingerprint;
    /// returns the aggregator's answer (WELCOME or REFUSED).
    @discardableResult
    func join() throws -> Message {
        client?.close()
        let tls = TLSConfiguration(directory: federation.root + "/certs", name: name)
        let client = try SecureClient(endpoint: federation.endpoint, tls: tls, serverName: "aggregator")
        self.client = client
        try client.connect(timeout: 20)
        let fingerprint = try ModelFingerprint.of(directory: federation.root + "/base")
        try client.send(.hello(Hello(name: name, baseFingerprint: fingerprint)))
        return try next(timeout: 30)
    }

    /// The next message that is not a heartbeat; throws when none comes within `timeout` s.
    func next(timeout: Double = 30) throws -> Message {
        guard let client else { throw LinkFailure.notConnected }
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let message = try client.receive(timeout: 0.5), message != .heartbeat { return message }
        }
        throw LinkFailure.heartbeatTimeout(seconds: timeout)
    }

    /// Uploads `path` under `name` through the resumable transfer; returns the aggregator's
    /// final word on it (COMMITTED, or the ERROR that refused it).
    @discardableResult
    func upload(_ path: String, as name: String) throws -> Message {
        guard let client else { throw LinkFailure.notConnected }
        let sender = try ChunkSender(path: path, name: name)
        try sender.start { try client.send($0) }
        while true {
            let message = try next()
            if case .error = message { return message }
            if try sender.handle(message, send: { try client.send($0) }), sender.isCommitted {
                return .committed(Committed(transferID: sender.offer.transferID, name: name))
            }
        }
    }

    /// Sends one message and returns the answer (or the link failure's description when the
    /// aggregator hung up without one).
    func send(_ message: Message, expectAnswer: Bool = true) throws -> Message? {
        guard let client else { throw LinkFailure.notConnected }
        try client.send(message)
        return expectAnswer ? try next() : nil
    }

    /// Waits for an ERROR (skipping anything else) until the aggregator says one or hangs up.
    func awaitError(timeout: Double = 120) -> ErrorReport? {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            guard let message = try? next(timeout: max(1, end.timeIntervalSinceNow)) else { return nil }
            if case .error(let report) = message { return report }
        }
        return nil
    }

    func close() { client?.close(); client = nil }

    // MARK: tampered contributions (made from an honest agent's prepared files)

    /// Copies `from` (a prepared directory) to `to`, rewriting tensors with `model` and
    /// `statistics`, and config.json with `config`.
    static func tamper(from: String, to: String,
                       model: (String, Tensor<Float>) -> Tensor<Float>? = { _, t in t },
                       extraModelTensors: [(name: String, tensor: Tensor<Float>)] = [],
                       statistics: (String, Tensor<Float>) -> Tensor<Float>? = { _, t in t },
                       config: ((inout [String: Any]) -> Void)? = nil) throws {
        try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
        func rewriteFile(_ file: String, _ rewrite: (String, Tensor<Float>) -> Tensor<Float>?,
                         extra: [(name: String, tensor: Tensor<Float>)]) throws {
            let source = try SafeTensorsFile(path: from + "/" + file)
            var tensors: [(name: String, tensor: Tensor<Float>)] = []
            for name in source.names where source.entry(name)!.dtype == .F32 {
                if let t = rewrite(name, try source.floatTensor(name)) { tensors.append((name, t)) }
            }
            try SafeTensorsWriter.write(tensors: tensors + extra, metadata: source.metadata, to: to + "/" + file)
        }
        try rewriteFile("model.safetensors", model, extra: extraModelTensors)
        try rewriteFile("stats.safetensors", statistics, extra: [])
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: from + "/config.json"))) as? [String: Any])
        config?(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: to + "/config.json"))
    }
}

extension Tensor where Scalar == Float {
    func scaled(by factor: Float) -> Tensor { var t = self; t.storage = t.storage.map { $0 * factor }; return t }
}
