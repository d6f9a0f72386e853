// ChunkReceiver's limits for an untrusted sender: a committed file is never replaced by
// other bytes, per-name size caps, free-disk refusal, and a cap on SHA-256 restarts.
// Driven message by message (no socket needed: the receiver is transport-agnostic).

import Foundation
import XCTest
@testable import Protocol

final class ChunkReceiverLimitsTests: ProtocolTestCase {
    private func offer(_ data: Data, name: String, id: String = UUID().uuidString) -> Offer {
        let hasher = SHA256Hasher()
        data.withUnsafeBytes { hasher.update($0) }
        return Offer(transferID: id, name: name, size: UInt64(data.count), sha256: hasher.finalizeHex())
    }

    /// OFFER, one CHUNK, COMMIT with `commitDigest` (the offer's own by default).
    private func send(_ data: Data, as name: String, to receiver: ChunkReceiver, commitDigest: String? = nil) throws -> ChunkReceiver.Outcome {
        let o = offer(data, name: name)
        _ = try receiver.handle(.offer(o))
        _ = try receiver.handle(.chunk(Chunk(transferID: o.transferID, offset: 0), payload: data))
        return try receiver.handle(.commit(Commit(transferID: o.transferID, sha256: commitDigest ?? o.sha256)))
    }

    func testACommittedFileIsNeverReplacedWhenReplacingIsOff() throws {
        let spool = TestFiles.temporaryDirectory("immutable")
        let receiver = try ChunkReceiver(spool: spool, replacesCommitted: false)
        XCTAssertNotNil(try send(Data("first".utf8), as: "config.json", to: receiver).completed)
        // The same bytes again: acknowledged as committed, not an error.
        XCTAssertEqual(try receiver.handle(.offer(offer(Data("first".utf8), name: "config.json"))).replies.first?.type, .committed)
        XCTAssertThrowsError(try receiver.handle(.offer(offer(Data("other".utf8), name: "config.json")))) { error in
            XCTAssertEqual(error as? TransferError, .alreadyCommitted(name: "config.json"))
        }
        XCTAssertEqual(try String(contentsOfFile: spool + "/config.json", encoding: .utf8), "first")
        // The agent side keeps replacing (a newer merged model of the same name).
        let replacing = try ChunkReceiver(spool: spool)
        XCTAssertNotNil(try send(Data("second".utf8), as: "config.json", to: replacing).completed)
        XCTAssertEqual(try String(contentsOfFile: spool + "/config.json", encoding: .utf8), "second")
    }

    func testPerNameSizeCapsAndFreeDiskAreEnforcedBeforeAnyByteLands() throws {
        let spool = TestFiles.temporaryDirectory("caps")
        let receiver = try ChunkReceiver(spool: spool, sizeLimits: ["config.json": 16])
        let big = Offer(transferID: "t", name: "config.json", size: 17, sha256: String(repeating: "a", count: 64))
        XCTAssertThrowsError(try receiver.handle(.offer(big))) { XCTAssertEqual($0 as? TransferError, .fileTooLarge(name: "config.json", size: 17, limit: 16)) }
        // More than the file system holds (this machine has far less than 1 TiB free): refused by name.
        let huge = Offer(transferID: "u", name: "model.safetensors", size: (1 << 40) - 1, sha256: String(repeating: "b", count: 64))
        XCTAssertThrowsError(try receiver.handle(.offer(huge))) { error in
            guard case .insufficientSpace(let name, let size, _, let directory)? = error as? TransferError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "model.safetensors")
            XCTAssertEqual(size, (1 << 40) - 1)
            XCTAssertEqual(directory, spool)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spool), [], "nothing written for refused offers")
    }

    func testDigestMismatchesAreCapped() throws {
        let spool = TestFiles.temporaryDirectory("digest")
        let receiver = try ChunkReceiver(spool: spool)
        let data = Data("payload".utf8)
        let wrong = String(repeating: "0", count: 64)
        for _ in 0..<ChunkReceiver.maxDigestRestarts {
            XCTAssertEqual(try send(data, as: "stats.safetensors", to: receiver, commitDigest: wrong).replies.first?.type, .resume)
        }
        XCTAssertThrowsError(try send(data, as: "stats.safetensors", to: receiver, commitDigest: wrong)) { error in
            guard case .tooManyRestarts? = error as? TransferError else { return XCTFail("\(error)") }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: spool + "/stats.safetensors"), "bad bytes never renamed")
    }
}
