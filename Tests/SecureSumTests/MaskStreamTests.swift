// MaskStream: the words are AES-256-CTR's keystream as the openssl CLI computes it (an
// independent implementation path), and distinct streams under one seed differ.

import Foundation
import XCTest
@testable import SecureSum

final class MaskStreamTests: XCTestCase {
    func testWordsAreTheAES256CTRKeystreamOfTheOpenSSLCommandLine() throws {
        var rng = SeededGenerator(seed: 11)
        let seed = PairwiseSeed(lower: "a", higher: "b", bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let stream: UInt64 = 0x0102_0304_0506_0708
        let words = try MaskStream.words(seed: seed, stream: stream, count: 37)   // 296 bytes: crosses 18 blocks
        let dir = NSTemporaryDirectory() + "fedmerge-maskstream-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(count: 37 * 8).write(to: URL(fileURLWithPath: dir + "/zeros"))
        let result = try ExternalTool.run("/usr/bin/openssl", ["enc", "-aes-256-ctr", "-K", hex(seed.bytes), "-iv", "01020304050607080000000000000000",
                                                               "-nosalt", "-in", dir + "/zeros", "-out", dir + "/keystream"])
        XCTAssertEqual(result.status, 0, result.output)
        let keystream = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/keystream")))
        let ours = words.flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * UInt64($0))) } }
        XCTAssertEqual(ours, keystream)
    }

    func testStreamsUnderOneSeedDifferAndAPrefixIsStable() throws {
        let seed = PairwiseSeed(lower: "a", higher: "b", bytes: [UInt8](repeating: 7, count: 32))
        let s0 = try MaskStream.words(seed: seed, stream: 0, count: 100)
        let s1 = try MaskStream.words(seed: seed, stream: 1, count: 100)
        XCTAssertEqual(zip(s0, s1).filter { $0 == $1 }.count, 0)
        XCTAssertEqual(try MaskStream.words(seed: seed, stream: 0, count: 10), Array(s0.prefix(10)))
    }
}
