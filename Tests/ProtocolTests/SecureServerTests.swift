// SecureServer over real loopback sockets and real TLS 1.3 handshakes: bad peers of every
// kind are refused while a good peer keeps transferring; malformed traffic drops only the
// offending link and the server keeps serving.

import CZMQ
import Foundation
import XCTest
@testable import Protocol

final class SecureServerTests: ProtocolTestCase {
    func testBadPeersAreRefusedWhileAGoodPeerKeepsTransferring() throws {
        let federation = try TestFederation()
        // Same name as the good agent, but signed by a CA the server does not trust.
        let foreign = try CertificateAuthority.initialize(directory: TestFiles.temporaryDirectory("foreign-ca"))
        let foreignFiles = try foreign.issue(name: "agent-good", server: false)
        let now = Date()
        try federation.authority.issue(name: "agent-expired", server: false,
                                       notBefore: now.addingTimeInterval(-30 * 86400), notAfter: now.addingTimeInterval(-86400))
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { $0.hasPrefix("agent-") && $0 != "agent-evil" },
                                        heartbeat: HeartbeatPolicy(interval: 0.5, timeout: 120))
        defer { harness.stop() }

        // The good agent uploads 16 MiB and pauses half-way until the bad peers are done.
        let source = TestFiles.temporaryDirectory("src") + "/weights.bin"
        try TestFiles.randomFile(at: source, size: 16 << 20, seed: 11)
        let halfway = DispatchSemaphore(value: 0), proceed = DispatchSemaphore(value: 0)
        let goodResult = Locked<Result<UploadTrace, Error>?>(nil)
        let goodTLS = try federation.agentTLS("agent-good")
        let endpoint = harness.endpoint
        let goodThread = Thread {
            goodResult.write { result in
                result = Result {
                    let client = try SecureClient(endpoint: endpoint, tls: goodTLS, serverName: "aggregator")
                    try client.connect()
                    let sender = try ChunkSender(path: source, name: "weights.bin", chunkSize: 256 << 10, window: 2)
                    var paused = false
                    return try upload(sender, over: client) { sentEnd in
                        if !paused && sentEnd >= 8 << 20 {
                            paused = true
                            halfway.signal()
                            proceed.wait()
                        }
                    }
                }
            }
            halfway.signal()  // never leave the test waiting if the upload failed early
        }
        goodThread.start()
        XCTAssertEqual(halfway.wait(timeout: .now() + 120), .success)

        func attempt(_ tls: TLSConfiguration) -> LinkFailure? {
            do {
                let client = try SecureClient(endpoint: endpoint, tls: tls, serverName: "aggregator")
                try client.connect(timeout: 30)
                return nil
            } catch {
                return error as? LinkFailure
            }
        }
        let caFile = federation.directory + "/ca.pem"
        let noCertificate = attempt(TLSConfiguration(caFile: caFile, certificateFile: nil, keyFile: nil))
        let otherCA = attempt(TLSConfiguration(caFile: caFile, certificateFile: foreignFiles.certificate, keyFile: foreignFiles.key))
        let expired = attempt(TLSConfiguration(directory: federation.directory, name: "agent-expired"))
        let notAllowed = attempt(try federation.agentTLS("agent-evil"))
        for (label, failure) in [("no certificate", noCertificate), ("other CA", otherCA), ("expired", expired)] {
            guard case .handshake? = failure else { XCTFail("\(label): expected a handshake failure, got \(String(describing: failure))"); continue }
        }
        guard case .refusedByServer(let reason)? = notAllowed else { return XCTFail("not allowed: got \(String(describing: notAllowed))") }
        XCTAssertTrue(reason.contains("agent-evil"), reason)

        // A plain ZeroMQ peer speaking cleartext.
        let plain = try ZMQSocket(.dealer)
        try plain.connect(endpoint)
        try plain.send(MessageCodec().encode(.hello(Hello(name: "plain", baseFingerprint: "x", protocolVersion: 1))))

        XCTAssertTrue(harness.waitForEvents { events in events.filter { if case .refused = $0 { true } else { false } }.count >= 5 },
                      "server reported \(harness.refusals())")
        let refusals = harness.refusals().map(\.description)
        XCTAssertEqual(refusals.count, 5, "\(refusals)")
        XCTAssertTrue(refusals.contains { $0.contains("did not return a certificate") || $0.contains("certificate required") }, "no-cert: \(refusals)")
        XCTAssertTrue(refusals.contains { $0.contains("unable to get local issuer certificate") }, "other CA: \(refusals)")
        XCTAssertTrue(refusals.contains { $0.contains("certificate has expired") }, "expired: \(refusals)")
        XCTAssertTrue(refusals.contains { $0.contains("'agent-evil' is not on the allow-list") }, "name: \(refusals)")
        XCTAssertEqual(harness.connectedNames.read { $0.count }, 1, "refused peers left no state behind")
        // Only the good agent was ever admitted.
        let admitted = harness.events.read { $0.compactMap { if case .connected(_, let name) = $0 { name } else { nil } } }
        XCTAssertEqual(admitted, ["agent-good"])

        proceed.signal()
        while goodResult.read({ $0 == nil }) { Thread.sleep(forTimeInterval: 0.01) }
        let trace = try XCTUnwrap(goodResult.read { $0 }).get()
        XCTAssertTrue(trace.committed)
        let received = harness.spool + "/agent-good/weights.bin"
        XCTAssertEqual(try TestFiles.independentSHA256(received), try TestFiles.independentSHA256(source))
    }

    /// Opens an admitted link, sends `plaintext` encrypted as if it were a message, and
    /// returns what the server reported about the link.
    private func sendMalformed(_ plaintext: Data, as name: String, federation: TestFederation, harness: ServerHarness) throws -> (LinkFailure?, Message?) {
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS(name), serverName: "aggregator")
        try client.connect()
        try client.sendRawPlaintext(plaintext)
        let reply = try? client.receive(timeout: 30)
        _ = harness.waitForEvents { $0.contains { if case .disconnected = $0 { true } else { false } } }
        let failure = harness.disconnections().first
        harness.events.write { $0.removeAll() }
        return (failure, reply)
    }

    func testMalformedMessagesDropOnlyTheirLinkWithTypedErrors() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true },
                                        limits: MessageLimits(maxHeaderBytes: 4096, maxPayloadBytes: 1 << 20))
        defer { harness.stop() }
        // A long-lived good link that must survive everything below.
        let good = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-good"), serverName: "aggregator")
        try good.connect()
        XCTAssertTrue(harness.waitForEvents { $0.contains { if case .connected = $0 { true } else { false } } })
        harness.events.write { $0.removeAll() }

        func prefix(type: UInt16, headerLength: UInt32) -> Data {
            var d = Data()
            for v in [UInt16(1), type] { withUnsafeBytes(of: v.bigEndian) { d.append(contentsOf: $0) } }
            withUnsafeBytes(of: headerLength.bigEndian) { d.append(contentsOf: $0) }
            return d
        }
        var rng = SeededGenerator(seed: 5)
        let garbage = Data((0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let cases: [(String, Data, (MessageDecodingError) -> Bool)] = [
            ("garbage", garbage, { _ in true }),
            ("truncated header", prefix(type: 4, headerLength: 100) + Data("{\"name\":".utf8), { $0 == .headerBeyondMessage(claimed: 100, available: 8) }),
            ("oversize header length", prefix(type: 4, headerLength: 0xFFFF_FFF0) + Data("{}".utf8), { $0 == .headerTooLong(claimed: 0xFFFF_FFF0, limit: 4096) }),
            ("bad JSON", prefix(type: 7, headerLength: 6) + Data("{nope}".utf8), { if case .malformedHeader(.ack, _) = $0 { true } else { false } }),
            ("payload on ACK", MessageCodec().encode(.ack(Ack(transferID: "t", durableOffset: 1))) + Data([1, 2, 3]), { $0 == .unexpectedPayload(type: .ack, length: 3) }),
        ]
        for (index, (label, bytes, matches)) in cases.enumerated() {
            let (failure, reply) = try sendMalformed(bytes, as: "agent-bad\(index)", federation: federation, harness: harness)
            guard case .malformedMessage(let error)? = failure else { XCTFail("\(label): server reported \(String(describing: failure))"); continue }
            XCTAssertTrue(matches(error), "\(label): \(error)")
            guard case .error(let report)? = reply else { XCTFail("\(label): client got \(String(describing: reply))"); continue }
            XCTAssertEqual(report.message, LinkFailure.malformedMessage(error).description)
        }

        // Bytes that are not TLS records on an established link.
        let rogue = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-rogue"), serverName: "aggregator")
        try rogue.connect()
        try rogue.sendRawFrame(garbage)
        XCTAssertTrue(harness.waitForEvents { $0.contains { if case .disconnected(_, .record) = $0 { true } else { false } } }, "\(harness.disconnections())")

        // A raw peer sending a two-frame message, and one sending a frame over ZMQ_MAXMSGSIZE.
        let multipart = try ZMQSocket(.dealer)
        try multipart.connect(harness.endpoint)
        try multipart.send(Data("first".utf8), more: true)
        try multipart.send(Data("second".utf8))
        XCTAssertTrue(harness.waitForEvents { $0.contains { if case .refused(_, .malformedFrames(count: 2)) = $0 { true } else { false } } }, "\(harness.refusals())")
        let huge = try ZMQSocket(.dealer)
        try huge.connect(harness.endpoint)
        try huge.send(Data(count: SecureFraming.maxFrameBytes(harness.server.limits) + 1))

        // The good link still works end to end: a message out and a reply back.
        try good.send(.hello(Hello(name: "agent-good", baseFingerprint: "f", protocolVersion: 1, round: 2)))
        var reply: Message?
        while reply == nil { reply = try good.receive(timeout: 30) }
        XCTAssertEqual(reply, .welcome(Welcome(round: 2, wantedStatistics: [.gram], methods: ["regmean"])))
        XCTAssertEqual(harness.connectedNames.read { Array($0.values) }, ["agent-good"])
    }

    func testHandshakeFloodIsCappedAndStalledHandshakesExpire() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true },
                                        heartbeat: HeartbeatPolicy(interval: 0.1, timeout: 1), maxPendingHandshakes: 2)
        defer { harness.stop() }
        // Three raw peers each send the first 3 bytes of a TLS record header and stall.
        var stalled: [ZMQSocket] = []
        for _ in 0..<3 {
            let socket = try ZMQSocket(.dealer)
            try socket.connect(harness.endpoint)
            try socket.send(Data([0x16, 0x03, 0x01]))
            stalled.append(socket)
        }
        XCTAssertTrue(harness.waitForEvents { $0.contains { if case .refused(_, .tooManyPendingHandshakes(limit: 2)) = $0 { true } else { false } } },
                      "\(harness.refusals())")
        XCTAssertTrue(harness.waitForEvents { $0.filter { if case .refused(_, .handshakeTimeout) = $0 { true } else { false } }.count == 2 },
                      "\(harness.refusals())")
        // With the stalled handshakes gone, a real agent gets in.
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-1"), serverName: "aggregator")
        try client.connect()
        XCTAssertTrue(client.isConnected)
    }

    func testSilentPeerIsDisconnectedByHeartbeatTimeout() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true }, heartbeat: HeartbeatPolicy(interval: 0.1, timeout: 0.5))
        defer { harness.stop() }
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-quiet"), serverName: "aggregator")
        try client.connect()
        // The client never calls receive, so it sends no heartbeats.
        XCTAssertTrue(harness.waitForEvents { $0.contains { if case .disconnected(_, .heartbeatTimeout) = $0 { true } else { false } } }, "\(harness.events.read { $0 })")
        XCTAssertTrue(harness.connectedNames.read { $0.isEmpty })
    }

    func testReconnectWithTheSameNameSupersedesTheOldLink() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true })
        defer { harness.stop() }
        let tls = try federation.agentTLS("agent-1")
        let first = try SecureClient(endpoint: harness.endpoint, tls: tls, serverName: "aggregator")
        try first.connect()
        let second = try SecureClient(endpoint: harness.endpoint, tls: tls, serverName: "aggregator")
        try second.connect()
        XCTAssertTrue(harness.waitForEvents { $0.contains { if case .disconnected(_, .superseded) = $0 { true } else { false } } })
        XCTAssertEqual(harness.connectedNames.read { Array($0.values) }, ["agent-1"])
    }
}
