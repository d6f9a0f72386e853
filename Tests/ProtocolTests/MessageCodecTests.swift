// MessageCodec: every message type round-trips, every malformed input gives its typed error,
// and 100k seeded mutations of valid messages never trap.

import Foundation
import XCTest
@testable import Protocol

final class MessageCodecTests: ProtocolTestCase {
    static let samples: [Message] = [
        .hello(Hello(name: "agent-1", baseFingerprint: "sha256:abc", protocolVersion: 1, round: 3, attributes: ["arch": "bert"])),
        .welcome(Welcome(round: 3, wantedStatistics: [.gram, .fisher], methods: ["regmean", "average"])),
        .refused(Refused(reason: "different base model")),
        .offer(Offer(transferID: "t1", name: "model.safetensors", size: 123_456_789, sha256: String(repeating: "ab", count: 32))),
        .resume(Resume(transferID: "t1", offset: 4 << 20)),
        .chunk(Chunk(transferID: "t1", offset: 8 << 20), payload: Data((0..<1000).map { UInt8($0 & 0xFF) })),
        .ack(Ack(transferID: "t1", durableOffset: 12 << 20)),
        .commit(Commit(transferID: "t1", sha256: String(repeating: "cd", count: 32))),
        .committed(Committed(transferID: "t1", name: "model.safetensors")),
        .merged(Merged(round: 3, method: "regmean", files: [MergedFile(name: "model.safetensors", size: 10, sha256: String(repeating: "0", count: 64))])),
        .eval(Eval(round: 3, method: "regmean", metrics: ["accuracy": 0.91, "f1": 0.88])),
        .evaluated(Evaluated(round: 3, method: "regmean")),
        .error(ErrorReport(code: "malformed", message: "bad")),
        .heartbeat,
        .secureKey(SecureKey(round: 3, merge: "m", agent: "agent-1", publicKey: "AAEC", certificate: "-----BEGIN CERTIFICATE-----\n…", signature: "MEUC")),
        .secureKeys(SecureKeys(round: 3, merge: "m", keys: [SecureKey(round: 3, merge: "m", agent: "agent-2", publicKey: "AQ==", certificate: "", signature: "")])),
        .secureBounds(SecureBounds(round: 3, merge: "m", layoutDigest: String(repeating: "ab", count: 32), boundExponents: [3, nil, -7])),
        .secureScale(SecureScale(round: 3, merge: "m", layoutDigest: String(repeating: "ab", count: 32), agents: ["a", "b"], fractionBits: [57, 96], boundExponents: [3, nil])),
        .revealRequest(RevealRequest(round: 3, merge: "m", dropped: ["agent-2"])),
        .reveal(Reveal(round: 3, merge: "m", agent: "agent-1", seeds: ["agent-2": String(repeating: "0f", count: 32)])),
        .mergeFailed(MergeFailed(round: 3, merge: "m", reason: "fewer than min_agents (3) members remain")),
    ]

    func testEveryMessageTypeRoundTrips() throws {
        let codec = MessageCodec()
        XCTAssertEqual(Set(Self.samples.map(\.type.rawValue)), Set(MessageType.allCases.map(\.rawValue)), "a sample per type")
        for message in Self.samples {
            let bytes = codec.encode(message)
            XCTAssertEqual(try codec.decode(bytes), message, "\(message.type)")
        }
    }

    func testFramingIsBigEndianVersionTypeHeaderLength() throws {
        let bytes = MessageCodec().encode(.ack(Ack(transferID: "x", durableOffset: 7)))
        XCTAssertEqual(Array(bytes.prefix(4)), [0, 1, 0, 7])  // version 1, type ACK = 7
        let headerLength = Int(bytes[4]) << 24 | Int(bytes[5]) << 16 | Int(bytes[6]) << 8 | Int(bytes[7])
        XCTAssertEqual(headerLength, bytes.count - 8)
        let json = try JSONSerialization.jsonObject(with: bytes.dropFirst(8)) as? [String: Any]
        XCTAssertEqual(json?["durableOffset"] as? Int, 7)
    }

    func testChunkPayloadDecodesWithoutCopyAsSliceOfInput() throws {
        let payload = Data(repeating: 0x5A, count: 4096)
        let bytes = MessageCodec().encode(.chunk(Chunk(transferID: "t", offset: 0), payload: payload))
        guard case .chunk(_, let decoded) = try MessageCodec().decode(bytes) else { return XCTFail("not a chunk") }
        XCTAssertEqual(decoded, payload)
        XCTAssertEqual(decoded.endIndex, bytes.endIndex, "payload is a slice of the input, not a copy")
    }

    private func header(version: UInt16 = 1, type: UInt16, headerLength: UInt32) -> Data {
        var d = Data()
        for v in [version, type] { withUnsafeBytes(of: v.bigEndian) { d.append(contentsOf: $0) } }
        withUnsafeBytes(of: headerLength.bigEndian) { d.append(contentsOf: $0) }
        return d
    }

    func testMalformedInputsGiveTheirTypedErrors() {
        let codec = MessageCodec(limits: MessageLimits(maxHeaderBytes: 1024, maxPayloadBytes: 4096))
        func expect(_ bytes: Data, _ error: MessageDecodingError, line: UInt = #line) {
            XCTAssertThrowsError(try codec.decode(bytes), line: line) { XCTAssertEqual($0 as? MessageDecodingError, error, line: line) }
        }
        expect(Data([0, 1, 0]), .truncatedPrefix(length: 3))
        expect(header(version: 9, type: 7, headerLength: 2) + Data("{}".utf8), .unsupportedVersion(9))
        expect(header(type: 999, headerLength: 2) + Data("{}".utf8), .unknownType(999))
        expect(header(type: 7, headerLength: 0x7FFF_FFFF), .headerTooLong(claimed: 0x7FFF_FFFF, limit: 1024))
        expect(header(type: 7, headerLength: 100) + Data("{\"transferID\"".utf8), .headerBeyondMessage(claimed: 100, available: 13))
        expect(header(type: 7, headerLength: 2) + Data("{}".utf8) + Data([1, 2]), .unexpectedPayload(type: .ack, length: 2))
        expect(header(type: 6, headerLength: 2) + Data("{}".utf8) + Data(count: 6000), .messageTooLong(length: 6010, limit: 8 + 1024 + 4096))
        let chunkHeader = Data(#"{"transferID":"t","offset":0}"#.utf8)
        let limitExact = MessageCodec(limits: MessageLimits(maxHeaderBytes: 1024, maxPayloadBytes: 10))
        XCTAssertThrowsError(try limitExact.decode(header(type: 6, headerLength: UInt32(chunkHeader.count)) + chunkHeader + Data(count: 11))) {
            XCTAssertEqual($0 as? MessageDecodingError, .payloadTooLong(type: .chunk, length: 11, limit: 10))
        }
        XCTAssertThrowsError(try codec.decode(header(type: 7, headerLength: 5) + Data("{oops".utf8))) { error in
            guard case .malformedHeader(.ack, _)? = error as? MessageDecodingError else { return XCTFail("\(error)") }
        }
        // Valid JSON, wrong shape: a negative offset cannot be a UInt64.
        let negative = Data(#"{"transferID":"t","durableOffset":-5}"#.utf8)
        XCTAssertThrowsError(try codec.decode(header(type: 7, headerLength: UInt32(negative.count)) + negative)) { error in
            guard case .malformedHeader(.ack, _)? = error as? MessageDecodingError else { return XCTFail("\(error)") }
        }
    }

    func testErrorDescriptionsNameTheOffendingValue() {
        XCTAssertTrue(MessageDecodingError.headerTooLong(claimed: 123_456, limit: 1024).description.contains("123456"))
        XCTAssertTrue(MessageDecodingError.unknownType(77).description.contains("77"))
    }

    /// Seeded random mutations (bit flips, byte overwrites, truncation, extension, length-field
    /// rewrites) of valid messages: every input either decodes or throws a MessageDecodingError.
    func testHundredThousandMutatedInputsNeverTrap() {
        let codec = MessageCodec(limits: MessageLimits(maxHeaderBytes: 4096, maxPayloadBytes: 2048))
        let seeds = Self.samples.map { codec.encode($0) }
        var rng = SeededGenerator(seed: 0xF00D)
        var decoded = 0, rejected = 0
        for _ in 0..<100_000 {
            var bytes = [UInt8](seeds[Int.random(in: 0..<seeds.count, using: &rng)])
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<6, using: &rng) {
                case 0 where !bytes.isEmpty:
                    let i = Int.random(in: 0..<bytes.count, using: &rng)
                    bytes[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                case 1 where !bytes.isEmpty:
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 2:
                    bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
                case 3:
                    bytes += (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                case 4 where bytes.count >= 8:
                    let claimed = [UInt32.max, 0, UInt32(bytes.count), UInt32.random(in: 0...UInt32.max, using: &rng)][Int.random(in: 0..<4, using: &rng)]
                    withUnsafeBytes(of: claimed.bigEndian) { for k in 0..<4 { bytes[4 + k] = $0[k] } }
                default:
                    // Replace a JSON byte with structural characters to stress the parser.
                    if bytes.count > 9 { bytes[Int.random(in: 8..<bytes.count, using: &rng)] = Array("{}[]\":,-0e".utf8).randomElement(using: &rng)! }
                }
            }
            do {
                _ = try codec.decode(Data(bytes))
                decoded += 1
            } catch {
                rejected += 1
            }
        }
        XCTAssertEqual(decoded + rejected, 100_000)
        XCTAssertGreaterThan(rejected, 50_000, "mutations mostly break messages")
        XCTAssertGreaterThan(decoded, 0, "some mutations (payload bytes) still decode")
    }
}

/// SplitMix64 for reproducible test randomness.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
