// ChunkReceiver: a link cut at a random offset resumes from the acknowledged offset with a
// byte-identical result and nothing renamed early; the durable offset survives a receiver
// restart; a hash mismatch never renames; bad messages give typed errors; mutated message
// sequences never trap and never commit bytes that differ from the offered digest.

import Foundation
import XCTest
@testable import Protocol

final class ChunkReceiverTests: ProtocolTestCase {
    func testLinkCutAtRandomOffsetResumesFromAcknowledgedOffsetByteIdentical() throws {
        let federation = try TestFederation()
        let harness = try ServerHarness(tls: federation.serverTLS, allow: { $0 == "agent-1" })
        defer { harness.stop() }
        let size = 48 << 20, chunk = 1 << 20
        let source = TestFiles.temporaryDirectory("src") + "/model.safetensors"
        try TestFiles.randomFile(at: source, size: size, seed: 48)
        let cut = UInt64.random(in: UInt64(6 << 20)...UInt64(40 << 20))
        print("cutting the link after \(cut) chunk bytes")
        let final = harness.spool + "/agent-1/model.safetensors"
        let tls = try federation.agentTLS("agent-1")

        let first = try SecureClient(endpoint: harness.endpoint, tls: tls, serverName: "aggregator")
        try first.connect()
        let trace1 = try upload(ChunkSender(path: source, name: "model.safetensors", chunkSize: chunk, window: 4), over: first, stopAfterChunkBytes: cut)
        XCTAssertFalse(trace1.committed)
        XCTAssertGreaterThan(trace1.highestAck, 0)
        first.close()  // the connection goes away mid-transfer (linger 0: unsent bytes are dropped)
        XCTAssertFalse(FileManager.default.fileExists(atPath: final), "nothing renamed early")
        XCTAssertTrue(FileManager.default.fileExists(atPath: final + ".partial"))

        let second = try SecureClient(endpoint: harness.endpoint, tls: tls, serverName: "aggregator")
        try second.connect()
        var renamedEarly = false
        let trace2 = try upload(ChunkSender(path: source, name: "model.safetensors", chunkSize: chunk, window: 4), over: second) { _ in
            if FileManager.default.fileExists(atPath: final) { renamedEarly = true }
        }
        XCTAssertTrue(trace2.committed)
        XCTAssertFalse(renamedEarly, "nothing renamed before COMMIT")
        let resumedAt = try XCTUnwrap(trace2.resumeOffsets.first)
        XCTAssertGreaterThanOrEqual(resumedAt, trace1.highestAck, "resumes at or after what was acknowledged to the sender")
        XCTAssertLessThanOrEqual(resumedAt, trace1.chunkBytesSent, "never past what was sent")
        XCTAssertEqual(resumedAt % UInt64(chunk), 0, "durable offsets fall on chunk boundaries")
        XCTAssertEqual(trace2.chunkBytesSent, UInt64(size) - resumedAt, "only the missing bytes were sent again")
        XCTAssertEqual(try TestFiles.independentSHA256(final), try TestFiles.independentSHA256(source))
    }

    func testServerRestartMidTransferResumesFromTheSpool() throws {
        let federation = try TestFederation()
        let size = 24 << 20, chunk = 1 << 20
        let source = TestFiles.temporaryDirectory("src") + "/stats.safetensors"
        try TestFiles.randomFile(at: source, size: size, seed: 24)
        let tls = try federation.agentTLS("agent-2")

        let first = try ServerHarness(tls: federation.serverTLS, allow: { _ in true })
        let spool = first.spool
        let client1 = try SecureClient(endpoint: first.endpoint, tls: tls, serverName: "aggregator")
        try client1.connect()
        let trace1 = try upload(ChunkSender(path: source, name: "stats.safetensors", chunkSize: chunk, window: 2), over: client1,
                                stopAfterChunkBytes: UInt64(10 << 20))
        // Wait until the server has acknowledged something, then kill it (the aggregator dies).
        var acked = trace1.highestAck
        while acked == 0, let message = try client1.receive(timeout: 30) {
            if case .ack(let ack) = message { acked = ack.durableOffset }
        }
        first.stop()
        client1.close()

        // A new server process on the same spool (new port); the agent dials again.
        let second = try ServerHarness(tls: federation.serverTLS, allow: { _ in true }, spool: spool)
        defer { second.stop() }
        let client2 = try SecureClient(endpoint: second.endpoint, tls: tls, serverName: "aggregator")
        try client2.connect()
        let trace2 = try upload(ChunkSender(path: source, name: "stats.safetensors", chunkSize: chunk, window: 2), over: client2)
        XCTAssertTrue(trace2.committed)
        let resumedAt = try XCTUnwrap(trace2.resumeOffsets.first)
        XCTAssertGreaterThanOrEqual(resumedAt, acked, "acknowledged bytes are not asked for again")
        XCTAssertEqual(trace2.chunkBytesSent, UInt64(size) - resumedAt)
        XCTAssertEqual(try TestFiles.independentSHA256(spool + "/agent-2/stats.safetensors"), try TestFiles.independentSHA256(source))
    }

    // MARK: in-process (no link): messages fed straight to the receiver

    private struct Fixture {
        let dir: String
        let data: Data
        let sha: String
        init(size: Int, seed: UInt64) throws {
            dir = TestFiles.temporaryDirectory("recv")
            try TestFiles.randomFile(at: dir + "/source", size: size, seed: seed)
            data = try Data(contentsOf: URL(fileURLWithPath: dir + "/source"))
            sha = try SHA256Hasher.hashFile(dir + "/source")
        }
        func offer(_ id: String = "t1", name: String = "f.bin") -> Message {
            .offer(Offer(transferID: id, name: name, size: UInt64(data.count), sha256: sha))
        }
        func chunk(_ id: String = "t1", from: Int, to: Int) -> Message {
            .chunk(Chunk(transferID: id, offset: UInt64(from)), payload: data[from..<to])
        }
    }

    func testDurableOffsetSurvivesReceiverRestart() throws {
        let f = try Fixture(size: 1 << 20, seed: 9)
        let spool = f.dir + "/spool"
        do {
            let receiver = try ChunkReceiver(spool: spool)
            XCTAssertEqual(try receiver.handle(f.offer()).replies, [.resume(Resume(transferID: "t1", offset: 0))])
            XCTAssertEqual(try receiver.handle(f.chunk(from: 0, to: 300_000)).replies, [.ack(Ack(transferID: "t1", durableOffset: 300_000))])
        }  // the receiver process "dies" here
        let restarted = try ChunkReceiver(spool: spool)
        XCTAssertEqual(try restarted.handle(f.offer("t2")).replies, [.resume(Resume(transferID: "t2", offset: 300_000))])
        _ = try restarted.handle(f.chunk("t2", from: 300_000, to: f.data.count))
        let outcome = try restarted.handle(.commit(Commit(transferID: "t2", sha256: f.sha)))
        XCTAssertEqual(outcome.replies, [.committed(Committed(transferID: "t2", name: "f.bin"))])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: spool + "/f.bin")), f.data)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spool), ["f.bin"], "partial and sidecar removed")
    }

    func testDifferentOfferForSameNameRestartsFromZero() throws {
        let f = try Fixture(size: 100_000, seed: 1)
        let receiver = try ChunkReceiver(spool: f.dir + "/spool")
        _ = try receiver.handle(f.offer())
        _ = try receiver.handle(f.chunk(from: 0, to: 50_000))
        let other = Offer(transferID: "t9", name: "f.bin", size: 99_999, sha256: String(repeating: "1", count: 64))
        XCTAssertEqual(try receiver.handle(.offer(other)).replies, [.resume(Resume(transferID: "t9", offset: 0))])
        let partialSize = try FileManager.default.attributesOfItem(atPath: f.dir + "/spool/f.bin.partial")[.size] as? Int
        XCTAssertEqual(partialSize, 0)
    }

    func testHashMismatchNeverRenamesAndRestartsTheTransfer() throws {
        let f = try Fixture(size: 200_000, seed: 2)
        let spool = f.dir + "/spool"
        let receiver = try ChunkReceiver(spool: spool)
        _ = try receiver.handle(f.offer())
        var corrupted = f.data
        corrupted[123_456] ^= 0xFF
        _ = try receiver.handle(.chunk(Chunk(transferID: "t1", offset: 0), payload: corrupted))
        let outcome = try receiver.handle(.commit(Commit(transferID: "t1", sha256: f.sha)))
        XCTAssertEqual(outcome.replies, [.resume(Resume(transferID: "t1", offset: 0))])
        XCTAssertNil(outcome.completed)
        XCTAssertFalse(FileManager.default.fileExists(atPath: spool + "/f.bin"))
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: spool + "/f.bin.partial")[.size] as? Int, 0)
        // The restarted transfer with the right bytes commits.
        _ = try receiver.handle(f.chunk(from: 0, to: f.data.count))
        XCTAssertNotNil(try receiver.handle(.commit(Commit(transferID: "t1", sha256: f.sha))).completed)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: spool + "/f.bin")), f.data)
    }

    func testBadMessagesGiveTypedErrorsAndLeaveTheReceiverUsable() throws {
        let f = try Fixture(size: 10_000, seed: 3)
        let receiver = try ChunkReceiver(spool: f.dir + "/spool", maxFileSize: 1 << 20)
        func expect(_ message: Message, _ error: TransferError, line: UInt = #line) {
            XCTAssertThrowsError(try receiver.handle(message), line: line) { XCTAssertEqual($0 as? TransferError, error, line: line) }
        }
        expect(f.chunk(from: 0, to: 10), .unknownTransfer("t1"))
        expect(.offer(Offer(transferID: "x", name: "../etc/passwd", size: 1, sha256: f.sha)), .invalidName("../etc/passwd"))
        expect(.offer(Offer(transferID: "x", name: "a.partial", size: 1, sha256: f.sha)), .invalidName("a.partial"))
        expect(.offer(Offer(transferID: "x", name: "a", size: 1, sha256: "zz")), .invalidDigest("zz"))
        expect(.offer(Offer(transferID: "x", name: "a", size: 2 << 20, sha256: f.sha)), .fileTooLarge(name: "a", size: 2 << 20, limit: 1 << 20))
        expect(.hello(Hello(name: "a", baseFingerprint: "b", protocolVersion: 1)), .unexpectedMessage(.hello))
        _ = try receiver.handle(f.offer())
        expect(f.chunk(from: 10, to: 20), .outOfOrder(transferID: "t1", expected: 0, got: 10))
        _ = try receiver.handle(f.offer())
        expect(.chunk(Chunk(transferID: "t1", offset: 0), payload: Data(count: 10_001)), .beyondEnd(transferID: "t1", end: 10_001, size: 10_000))
        _ = try receiver.handle(f.offer())
        expect(.chunk(Chunk(transferID: "t1", offset: 0), payload: Data()), .emptyChunk(transferID: "t1", offset: 0))
        _ = try receiver.handle(f.offer())
        _ = try receiver.handle(f.chunk(from: 0, to: 10))
        expect(.commit(Commit(transferID: "t1", sha256: f.sha)), .commitBeforeComplete(transferID: "t1", received: 10, size: 10_000))
        // After all that, a clean re-offer resumes at the 10 durable bytes and completes.
        XCTAssertEqual(try receiver.handle(f.offer()).replies, [.resume(Resume(transferID: "t1", offset: 10))])
        _ = try receiver.handle(f.chunk(from: 10, to: f.data.count))
        XCTAssertNotNil(try receiver.handle(.commit(Commit(transferID: "t1", sha256: f.sha))).completed)
    }

    /// Seeded random sequences of (often wrong) OFFER/CHUNK/COMMIT messages: the receiver never
    /// traps, and every file it reports complete has the offered digest on disk.
    func testMutatedMessageSequencesNeverTrapNorCommitWrongBytes() throws {
        let f = try Fixture(size: 64 << 10, seed: 4)
        let spool = f.dir + "/spool"
        var rng = SeededGenerator(seed: 77)
        var messages = 0, rejected = 0, commits = 0
        for round in 0..<400 {
            let receiver = try ChunkReceiver(spool: spool, maxFileSize: 1 << 20, syncEachChunk: false)
            let name = ["f.bin", "g.bin", "h"][Int.random(in: 0..<3, using: &rng)]
            var offset = 0
            for _ in 0..<40 {
                let message: Message
                // Mostly plausible traffic (so whole transfers do complete), with wrong values mixed in.
                let plausible = Int.random(in: 0..<5, using: &rng) != 0
                switch Int.random(in: 0..<10, using: &rng) {
                case 0:
                    let sha = plausible ? f.sha : String(repeating: "e", count: 64)
                    let size = Bool.random(using: &rng) || plausible ? UInt64(f.data.count) : UInt64.random(in: 0...UInt64(2 << 20), using: &rng)
                    message = .offer(Offer(transferID: "t\(round % 3)", name: name, size: size, sha256: sha))
                    offset = 0
                case 1...6:
                    let from = plausible ? offset : Int.random(in: 0...f.data.count, using: &rng)
                    let to = min(f.data.count, from + Int.random(in: 0...40_000, using: &rng))
                    var payload = Data(f.data[from..<to])
                    if Int.random(in: 0..<8, using: &rng) == 0, !payload.isEmpty { payload[payload.startIndex] ^= 1 }
                    let id = plausible ? round % 3 : Int.random(in: 0..<3, using: &rng)
                    message = .chunk(Chunk(transferID: "t\(id)", offset: UInt64(from)), payload: payload)
                    offset = to
                case 7, 8:
                    message = .commit(Commit(transferID: "t\(round % 3)", sha256: Bool.random(using: &rng) ? f.sha : String(repeating: "0", count: 64)))
                default:
                    message = .ack(Ack(transferID: "t0", durableOffset: UInt64.random(in: 0...UInt64.max, using: &rng)))
                }
                messages += 1
                do {
                    if let done = try receiver.handle(message).completed {
                        commits += 1
                        XCTAssertEqual(try SHA256Hasher.hashFile(done.path), done.sha256)
                        XCTAssertEqual(done.sha256, f.sha)
                        try FileManager.default.removeItem(atPath: done.path)
                    }
                } catch is TransferError {
                    rejected += 1
                }
            }
        }
        XCTAssertEqual(messages, 16_000)
        XCTAssertGreaterThan(rejected, 1000)
        XCTAssertGreaterThan(commits, 5, "the fuzz reaches the commit path")
        print("receiver fuzz: \(messages) messages, \(rejected) rejected, \(commits) commits")
    }
}
