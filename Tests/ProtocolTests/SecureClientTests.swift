// SecureClient over real sockets and handshakes: it admits only a server with the expected
// name from the federation CA, exchanges messages both ways, and notices a dead server.

import Foundation
import XCTest
@testable import Protocol

final class SecureClientTests: ProtocolTestCase {
    func testClientRefusesAServerCertificateForAnotherName() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true })
        defer { harness.stop() }
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-1"), serverName: "aggregator.example")
        XCTAssertThrowsError(try client.connect()) { error in
            guard case .handshake(let tls)? = error as? LinkFailure else { return XCTFail("\(error)") }
            XCTAssertTrue(tls.description.contains("hostname mismatch"), tls.description)
        }
    }

    func testClientRefusesAServerFromAnotherCA() throws {
        let federation = try TestFederation()
        let impostorCA = try CertificateAuthority.initialize(directory: TestFiles.temporaryDirectory("impostor"))
        try impostorCA.issue(name: "aggregator", server: true)
        let harness = try ServerHarness(tls: TLSConfiguration(caFile: federation.directory + "/ca.pem",
                                                              certificateFile: impostorCA.directory + "/aggregator.pem",
                                                              keyFile: impostorCA.directory + "/aggregator.key"),
                                        allow: { _ in true })
        defer { harness.stop() }
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-1"), serverName: "aggregator")
        XCTAssertThrowsError(try client.connect()) { error in
            guard case .handshake(let tls)? = error as? LinkFailure else { return XCTFail("\(error)") }
            XCTAssertTrue(tls.description.contains("unable to get local issuer certificate"), tls.description)
        }
    }

    func testMessagesCrossBothWaysAfterAdmission() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { $0 == "agent-1" })
        defer { harness.stop() }
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-1"), serverName: "aggregator")
        try client.connect()
        XCTAssertTrue(client.isConnected)
        let hello = Hello(name: "agent-1", baseFingerprint: "sha256:base", protocolVersion: 1, round: 4, attributes: ["layers": "2"])
        try client.send(.hello(hello))
        var reply: Message?
        while reply == nil { reply = try client.receive(timeout: 30) }
        XCTAssertEqual(reply, .welcome(Welcome(round: 4, wantedStatistics: [.gram], methods: ["regmean"])))
        XCTAssertTrue(harness.waitForEvents { $0.contains { if case .message(_, .hello(hello)) = $0 { true } else { false } } })
    }

    func testClientReportsHeartbeatTimeoutWhenTheServerGoesAway() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true })
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-1"), serverName: "aggregator",
                                      heartbeat: HeartbeatPolicy(interval: 0.1, timeout: 1))
        try client.connect()
        harness.stop()
        var failure: Error?
        while failure == nil {
            do { _ = try client.receive(timeout: 1) } catch { failure = error }
        }
        // The closed connection, normally; silence or a stuck send if the close went unseen.
        let dead: [LinkFailure] = [.connectionClosed, .heartbeatTimeout(seconds: 1), .peerUnreachable(seconds: 1)]
        XCTAssertTrue(dead.contains(failure as? LinkFailure ?? .notConnected), "\(String(describing: failure))")
        XCTAssertThrowsError(try client.send(.heartbeat)) { XCTAssertEqual($0 as? LinkFailure, failure as? LinkFailure) }
    }
}
