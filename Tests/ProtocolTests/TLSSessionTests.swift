// TLSSession and its frame BIO (shim.h): records split across frames at any byte — inside a
// record header, inside a body — are reassembled; a flipped ciphertext bit is rejected; a
// TLS 1.2 peer is refused.

import COpenSSL
import Foundation
import XCTest
@testable import Protocol

final class TLSSessionTests: ProtocolTestCase {
    /// Runs a handshake in memory, moving each flight as one whole frame.
    private func handshake(_ client: TLSSession, _ server: TLSSession) throws -> Bool {
        func move(_ from: TLSSession, _ to: TLSSession, _ body: () throws -> Void) throws {
            guard let out = from.takeOutput() else { return try body() }
            defer { BufferPool.shared.recycle(out.buffer, capacity: out.capacity) }
            try to.withFrame(UnsafeRawBufferPointer(start: out.buffer, count: out.count), body)
        }
        var done = (false, false)
        for _ in 0..<8 where !(done.0 && done.1) {
            done.0 = try client.advanceHandshake()
            try move(client, server) { done.1 = try server.advanceHandshake() }
            try move(server, client) { done.0 = try client.advanceHandshake() }
        }
        return done.0 && done.1
    }

    /// A client and a server session with a completed mutual handshake.
    private func connectedPair() throws -> (client: TLSSession, server: TLSSession) {
        let federation = try TestFederation()
        let client = try TLSSession(context: TLSContext(try federation.agentTLS("agent-1"), role: .client), serverName: "aggregator")
        let server = try TLSSession(context: TLSContext(federation.serverTLS, role: .server))
        XCTAssertTrue(try handshake(client, server))
        XCTAssertEqual(server.peerName, "agent-1")
        return (client, server)
    }

    func testTLS12PeerIsRefused() throws {
        let federation = try TestFederation()
        let oldClient = try TLSSession(context: TLSContext(try federation.agentTLS("agent-1"), role: .client, protocolVersion: TLS1_2_VERSION),
                                       serverName: "aggregator")
        let server = try TLSSession(context: TLSContext(federation.serverTLS, role: .server))
        XCTAssertThrowsError(try handshake(oldClient, server)) { error in
            guard case .handshakeFailed(let reason)? = error as? TLSError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("protocol"), reason)
        }
    }

    func testRecordsSplitAcrossFramesAtAnyByteAreReassembled() throws {
        let (client, server) = try connectedPair()
        let message = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        var rng = SeededGenerator(seed: 21)
        for trial in 0..<20 {
            try message.withUnsafeBytes { try client.write($0) }
            let out = try XCTUnwrap(client.takeOutput())
            defer { BufferPool.shared.recycle(out.buffer, capacity: out.capacity) }
            // Cut points: 3 bytes in (inside the first record header), then random ones.
            var cuts = [3] + (0..<Int.random(in: 1...12, using: &rng)).map { _ in Int.random(in: 4..<out.count, using: &rng) }
            cuts = Array(Set(cuts)).sorted() + [out.count]
            var received = Data()
            var start = 0
            for end in cuts {
                let frame = UnsafeRawBufferPointer(start: out.buffer + start, count: end - start)
                if let plaintext = try server.withFrame(frame, { try server.readPlaintext() }) { received.append(plaintext) }
                start = end
            }
            XCTAssertEqual(received, message, "trial \(trial), cuts \(cuts)")
        }
    }

    func testFlippedCiphertextBitIsRejected() throws {
        let (client, server) = try connectedPair()
        try Data("weights".utf8).withUnsafeBytes { try client.write($0) }
        let out = try XCTUnwrap(client.takeOutput())
        defer { BufferPool.shared.recycle(out.buffer, capacity: out.capacity) }
        out.buffer.storeBytes(of: out.buffer.load(fromByteOffset: 8, as: UInt8.self) ^ 0x10, toByteOffset: 8, as: UInt8.self)
        XCTAssertThrowsError(try server.withFrame(UnsafeRawBufferPointer(start: out.buffer, count: out.count)) { try server.readPlaintext() }) { error in
            guard case .recordFailed? = error as? TLSError else { return XCTFail("\(error)") }
        }
    }
}
