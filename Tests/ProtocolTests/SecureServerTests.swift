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

        // A plain ZeroMQ peer speaking cleartext (it does not reconnect once turned away).
        let plain = try ZMQSocket(.dealer)
        try plain.setOption(ZMQ_RECONNECT_IVL, Int32(-1))
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

    /// Opens an admitted link, sends `plaintext` encrypted as if it were framed messages, and
    /// returns what the server reported about the link and what the client saw.
    private func sendMalformed(_ plaintext: Data, as name: String, federation: TestFederation, harness: ServerHarness) throws -> (LinkFailure?, Error?) {
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS(name), serverName: "aggregator")
        try client.connect()
        try client.sendRawPlaintext(plaintext)
        var clientError: Error?
        do { while try client.receive(timeout: 30) == nil {} } catch { clientError = error }
        _ = harness.waitForEvents { $0.contains { if case .disconnected = $0 { true } else { false } } }
        let failure = harness.disconnections().first
        harness.events.write { $0.removeAll() }
        return (failure, clientError)
    }

    /// One message as it travels inside TLS: [u32 big-endian length][bytes].
    private func framed(_ bytes: Data) -> Data {
        var d = Data()
        withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { d.append(contentsOf: $0) }
        return d + bytes
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
        let limit = harness.server.limits.maxMessageBytes
        let cases: [(String, Data, String, (MessageDecodingError) -> Bool)] = [
            ("garbage", framed(garbage), "malformed", { _ in true }),
            ("truncated header", framed(prefix(type: 4, headerLength: 100) + Data("{\"name\":".utf8)), "malformed", { $0 == .headerBeyondMessage(claimed: 100, available: 8) }),
            ("oversize header length", framed(prefix(type: 4, headerLength: 0xFFFF_FFF0) + Data("{}".utf8)), "oversize", { $0 == .headerTooLong(claimed: 0xFFFF_FFF0, limit: 4096) }),
            ("bad JSON", framed(prefix(type: 7, headerLength: 6) + Data("{nope}".utf8)), "malformed", { if case .malformedHeader(.ack, _) = $0 { true } else { false } }),
            ("payload on ACK", framed(MessageCodec().encode(.ack(Ack(transferID: "t", durableOffset: 1))) + Data([1, 2, 3])), "malformed", { $0 == .unexpectedPayload(type: .ack, length: 3) }),
            // A length prefix above the limit: refused before anything is allocated.
            ("oversize length prefix", Data([0xFF, 0xFF, 0xFF, 0xF0]), "oversize", { $0 == .messageTooLong(length: 0xFFFF_FFF0, limit: limit) }),
            ("empty message", framed(Data()), "malformed", { $0 == .truncatedPrefix(length: 0) }),
        ]
        for (index, (label, bytes, code, matches)) in cases.enumerated() {
            let (failure, clientError) = try sendMalformed(bytes, as: "agent-bad\(index)", federation: federation, harness: harness)
            guard case .malformedMessage(let error)? = failure else { XCTFail("\(label): server reported \(String(describing: failure))"); continue }
            XCTAssertTrue(matches(error), "\(label): \(error)")
            // The server said why before closing, and the client surfaces it.
            XCTAssertEqual(clientError as? LinkFailure, .errorFromPeer(code: code, message: LinkFailure.malformedMessage(error).description), label)
        }

        // Bytes that are not TLS records on an established link.
        let rogue = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-rogue"), serverName: "aggregator")
        try rogue.connect()
        try rogue.sendRawBytes(garbage)
        XCTAssertTrue(harness.waitForEvents { $0.contains { if case .disconnected(_, .record) = $0 { true } else { false } } }, "\(harness.disconnections())")

        // The good link still works end to end: a message out and a reply back.
        try good.send(.hello(Hello(name: "agent-good", baseFingerprint: "f", protocolVersion: 1, round: 2)))
        var reply: Message?
        while reply == nil { reply = try good.receive(timeout: 30) }
        XCTAssertEqual(reply, .welcome(Welcome(round: 2, wantedStatistics: [.gram], methods: ["regmean"])))
        XCTAssertEqual(harness.connectedNames.read { Array($0.values) }, ["agent-good"])
    }

    func testAFullHandshakeTableEvictsTheOldestAndStalledHandshakesExpire() throws {
        let federation = try TestFederation()
        let server = try SecureServer(endpoint: "tcp://127.0.0.1:*", tls: federation.serverTLS, allow: { _ in true },
                                      heartbeat: HeartbeatPolicy(interval: 0.1, timeout: 5), maxPendingHandshakes: 2, handshakeTimeout: 1)
        defer { server.close() }
        // Three raw TCP peers each send the first 3 bytes of a TLS record header and stall.
        var stalled: [RawTCPPeer] = []
        var events: [ServerEvent] = []
        for _ in 0..<3 {
            let peer = try RawTCPPeer(endpoint: server.endpoint)
            peer.send(Data([0x16, 0x03, 0x01]))
            stalled.append(peer)
            // Let the server see this connection before the next one (eviction follows arrival order).
            let deadline = Date().addingTimeInterval(0.3)
            while Date() < deadline, let event = try server.receive(timeout: 0.05) { events.append(event) }
        }
        while events.count < 3, let event = try server.receive(timeout: 10) { events.append(event) }
        let failures = events.compactMap { if case .refused(_, let failure) = $0 { failure } else { nil } }
        // The oldest was evicted for the third; the other two expired.
        XCTAssertEqual(failures, [.evicted(limit: 2), .handshakeTimeout(seconds: 1), .handshakeTimeout(seconds: 1)])
        // Each was told, in a TLS alert it can read, and its connection closed (libzmq finishes
        // a close while the server keeps polling, as a daemon does).
        let received = Locked<[Int: Data?]>([:])
        for (index, peer) in stalled.enumerated() {
            Thread { let bytes = peer.readUntilClosed(timeout: 10); received.write { $0[index] = bytes } }.start()
        }
        while received.read({ $0.count < stalled.count }) { _ = try server.receive(timeout: 0.05) }
        for index in stalled.indices { XCTAssertEqual(received.read { $0[index] ?? nil }, BusyAlert.record, "peer \(index)") }
    }

    func testAGoodAgentGetsInDuringAHandshakeFlood() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true }, maxPendingHandshakes: 8)
        defer { harness.stop() }
        let endpoint = harness.endpoint
        let hello = try clientHelloBytes(federation: federation)
        // A peer without certificate opens connections, sends a genuine ClientHello on each and
        // never answers: far more stalled handshakes than the table holds, for as long as the
        // good agent is connecting (bounded: at most 2000 connections).
        let floodRunning = Locked(true), goodDone = Locked(false), opened = Locked(0)
        let floodStarted = DispatchSemaphore(value: 0), floodEnded = DispatchSemaphore(value: 0)
        Thread {
            var open: [RawTCPPeer] = []
            for index in 0..<2000 where !goodDone.read({ $0 }) {
                if let peer = try? RawTCPPeer(endpoint: endpoint) {
                    peer.send(hello)
                    open.append(peer)
                    if open.count > 200 { open.removeFirst() }  // stay within the fd limit
                }
                opened.write { $0 += 1 }
                if index == 40 { floodStarted.signal() }
                // 50 connections a second: 8 slots turn over every 160 ms, so nothing stalled
                // survives long, and a good handshake has a fair window to finish.
                Thread.sleep(forTimeInterval: 0.02)
            }
            floodRunning.write { $0 = false }
            floodStarted.signal()
            floodEnded.signal()
        }.start()
        floodStarted.wait()
        let client = try SecureClient(endpoint: endpoint, tls: try federation.agentTLS("agent-good"), serverName: "aggregator")
        try client.connect()
        try client.send(.hello(Hello(name: "agent-good", baseFingerprint: "f", protocolVersion: 1, round: 5)))
        var reply: Message?
        while reply == nil { reply = try client.receive(timeout: 30) }
        let floodStillRunning = floodRunning.read { $0 }
        goodDone.write { $0 = true }
        floodEnded.wait()
        XCTAssertEqual(reply, .welcome(Welcome(round: 5, wantedStatistics: [.gram], methods: ["regmean"])))
        XCTAssertTrue(floodStillRunning, "the flood ended (\(opened.read { $0 }) connections) before the good agent got in")
        // The flood really overflowed the table: old stalled handshakes were evicted.
        XCTAssertTrue(harness.refusals().contains(.evicted(limit: 8)), "\(harness.refusals().prefix(5))")
    }

    func testAClientTurnedAwayBusyReportsServerBusy() throws {
        // A listener that answers the client's ClientHello with the server's busy alert.
        let federation = try TestFederation()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                XCTAssertEqual(bind(listener, raw, length), 0)
                XCTAssertEqual(getsockname(listener, raw, &length), 0)
            }
        }
        XCTAssertEqual(listen(listener, 1), 0)
        let port = UInt16(bigEndian: address.sin_port)
        Thread {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 4096)
            _ = recv(connection, &buffer, buffer.count, 0)   // the ClientHello
            BusyAlert.record.withUnsafeBytes { _ = send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            Thread.sleep(forTimeInterval: 0.5)
            close(connection)
        }.start()
        let client = try SecureClient(endpoint: "tcp://127.0.0.1:\(port)", tls: try federation.agentTLS("agent-1"), serverName: "aggregator")
        XCTAssertThrowsError(try client.connect(timeout: 10)) { XCTAssertEqual($0 as? LinkFailure, .serverBusy) }
    }

    func testPeerChosenValuesCannotForgeLogLines() {
        // What a peer chooses (certificate name, REFUSED/ERROR text, decoder complaints quoting
        // its JSON) reaches log lines only escaped: one event, one line.
        let forged = "agent-1\n2026-11-30T00:00:00+0000 notice fedmerge.wire.server: peer connected\u{1b}[2J"
        let failures: [LinkFailure] = [
            .nameNotAllowed(forged), .refusedByServer(reason: forged), .errorFromPeer(code: forged, message: forged),
            .malformedMessage(.malformedHeader(type: .hello, reason: forged)), .handshake(.handshakeFailed(forged)),
        ]
        for failure in failures {
            let line = failure.description
            XCTAssertFalse(line.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, line)
            XCTAssertTrue(line.contains("agent-1\\n2026"), line)
        }
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

/// Issue 17 item 1: a peer without certificate that claims the routing id the server's socket
/// would assign next. libzmq's ROUTER accepted such an id verbatim and then asserted (process
/// abort, `socket_base.cpp:2130`) when the next honest peer was given the same id.
final class ClaimedRoutingIDTests: ProtocolTestCase {
    func testPeersClaimingTheNextRoutingIDsCannotStopTheServer() throws {
        let federation = try TestFederation()
        // A fresh process's libzmq starts its id counter at glibc's first unseeded rand()
        // (0x6b8b4567); srand(1) puts this process back in that state for the server socket.
        srand(1)
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true })
        defer { harness.stop() }
        var attackers: [ZMQSocket] = []
        for step in UInt32(0)..<8 {
            let socket = try ZMQSocket(.dealer)
            var id: [UInt8] = [0x00]
            withUnsafeBytes(of: (0x6b8b_4567 &+ step).bigEndian) { id.append(contentsOf: $0) }
            XCTAssertEqual(zmq_setsockopt(socket.handle, ZMQ_ROUTING_ID, id, id.count), 0)
            try socket.setOption(ZMQ_RECONNECT_IVL, Int32(-1))
            try socket.connect(harness.endpoint)
            try socket.send(Data("not a TLS record".utf8))
            attackers.append(socket)
        }
        // Every claimed-id peer reached the server (and was turned away) before the good one connects.
        XCTAssertTrue(harness.waitForEvents { $0.filter { if case .refused = $0 { true } else { false } }.count >= 8 },
                      "\(harness.refusals())")

        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-good"), serverName: "aggregator")
        try client.connect()
        try client.send(.hello(Hello(name: "agent-good", baseFingerprint: "f", protocolVersion: 1, round: 3)))
        var reply: Message?
        while reply == nil { reply = try client.receive(timeout: 30) }
        XCTAssertEqual(reply, .welcome(Welcome(round: 3, wantedStatistics: [.gram], methods: ["regmean"])))
        XCTAssertEqual(harness.connectedNames.read { Array($0.values) }, ["agent-good"])
        for socket in attackers { socket.close() }
    }
}
