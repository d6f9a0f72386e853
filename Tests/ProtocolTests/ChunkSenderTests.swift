// ChunkSender: a 100 MiB file crosses TLS over ZeroMQ STREAM intact with at most `window` chunks
// unacknowledged; the server can send to an agent the same way; an already-committed file is
// not sent again; a file that changes under the sender is never committed.

import Foundation
import XCTest
@testable import Protocol

final class ChunkSenderTests: ProtocolTestCase {
    func testHundredMiBCrossesIntactUnderFlowControl() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { $0 == "agent-1" })
        defer { harness.stop() }
        let size = 100 << 20, chunk = 4 << 20, window = 3
        let source = TestFiles.temporaryDirectory("src") + "/model.safetensors"
        try TestFiles.randomFile(at: source, size: size, seed: 100)

        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-1"), serverName: "aggregator")
        try client.connect()
        let sender = try ChunkSender(path: source, name: "model.safetensors", chunkSize: chunk, window: window)
        let trace = try upload(sender, over: client)

        XCTAssertTrue(trace.committed)
        XCTAssertEqual(trace.resumeOffsets, [0])
        XCTAssertEqual(trace.chunkBytesSent, UInt64(size), "every byte sent exactly once")
        XCTAssertLessThanOrEqual(trace.maxInFlight, UInt64(window * chunk), "never more than the window unacknowledged")
        XCTAssertGreaterThan(trace.maxInFlight, UInt64(chunk), "the window was actually used")
        let received = harness.spool + "/agent-1/model.safetensors"
        XCTAssertEqual(try TestFiles.independentSHA256(received), try TestFiles.independentSHA256(source))
        XCTAssertEqual(harness.completed.read { $0.map(\.name) }, ["model.safetensors"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: received + ".partial"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: received + ".partial.offer"))
    }

    func testAlreadyCommittedFileIsNotSentAgain() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { _ in true })
        defer { harness.stop() }
        let source = TestFiles.temporaryDirectory("src") + "/stats.safetensors"
        try TestFiles.randomFile(at: source, size: 3 << 20, seed: 3)
        let client = try SecureClient(endpoint: harness.endpoint, tls: try federation.agentTLS("agent-1"), serverName: "aggregator")
        try client.connect()
        XCTAssertTrue(try upload(ChunkSender(path: source, name: "stats.safetensors", chunkSize: 1 << 20), over: client).committed)
        let again = try upload(ChunkSender(path: source, name: "stats.safetensors", chunkSize: 1 << 20), over: client)
        XCTAssertTrue(again.committed)
        XCTAssertEqual(again.chunkBytesSent, 0)
    }

    /// The reverse direction, as the aggregator sends a merged model: ChunkSender on the server
    /// (sending with `server.send(_:to:)`), ChunkReceiver on the agent.
    func testServerSendsAFileToAnAgent() throws {
        let federation = try TestFederation()
        let source = TestFiles.temporaryDirectory("merged") + "/model.safetensors"
        try TestFiles.randomFile(at: source, size: 9 << 20 + 12345, seed: 77)
        let server = try SecureServer(endpoint: "tcp://127.0.0.1:*", tls: federation.serverTLS, allow: { _ in true })
        let endpoint = server.endpoint
        let serverResult = Locked<Result<Void, Error>?>(nil)
        Thread {
            let result = Result<Void, Error> {
                defer { server.close() }
                let sender = try ChunkSender(path: source, name: "model.safetensors", chunkSize: 1 << 20, window: 3)
                var agent: PeerID?
                while !sender.isCommitted {
                    guard let event = try server.receive(timeout: 60) else { throw UploadError.timedOut }
                    switch event {
                    case .connected(let peer, _):
                        agent = peer
                        try sender.start { try server.send($0, to: peer) }
                    case .message(let peer, let message) where peer == agent:
                        try sender.handle(message) { try server.send($0, to: peer) }
                    default: break
                    }
                }
            }
            serverResult.write { $0 = result }
        }.start()

        let client = try SecureClient(endpoint: endpoint, tls: try federation.agentTLS("agent-1"), serverName: "aggregator")
        try client.connect()
        let receiver = try ChunkReceiver(spool: TestFiles.temporaryDirectory("agent-spool"))
        var completed: ChunkReceiver.CompletedFile?
        while completed == nil {
            guard let message = try client.receive(timeout: 60) else { return XCTFail("no message from the server") }
            let outcome = try receiver.handle(message)
            for reply in outcome.replies { try client.send(reply) }
            completed = outcome.completed
        }
        while serverResult.read({ $0 == nil }) { _ = try? client.receive(timeout: 0.05) }
        try XCTUnwrap(serverResult.read { $0 }).get()
        XCTAssertEqual(try TestFiles.independentSHA256(try XCTUnwrap(completed).path), try TestFiles.independentSHA256(source))
    }

    /// In-process, no link: the sender's messages go straight to a real ChunkReceiver.
    func testFileChangedAfterHashingIsNeverCommittedAndSenderGivesUp() throws {
        let dir = TestFiles.temporaryDirectory("changing")
        let source = dir + "/w.bin"
        try TestFiles.randomFile(at: source, size: 1 << 20, seed: 1)
        let sender = try ChunkSender(path: source, name: "w.bin", chunkSize: 256 << 10, window: 2, maxRestarts: 2)
        try TestFiles.randomFile(at: source, size: 1 << 20, seed: 2)  // same size, other bytes
        let receiver = try ChunkReceiver(spool: dir + "/spool")
        var queue: [Message] = []
        try sender.start { queue.append($0) }
        var thrown: Error?
        var restarts = 0
        while !queue.isEmpty && thrown == nil {
            let message = queue.removeFirst()
            for reply in try receiver.handle(message).replies {
                if case .resume(let r) = reply, r.offset == 0, sender.state == .committing { restarts += 1 }
                do { try sender.handle(reply) { queue.append($0) } } catch { thrown = error }
            }
        }
        XCTAssertEqual(thrown as? TransferError, .tooManyRestarts(transferID: sender.offer.transferID, restarts: 3))
        XCTAssertEqual(restarts, 3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/spool/w.bin"), "bad bytes were never renamed into place")
    }
}
