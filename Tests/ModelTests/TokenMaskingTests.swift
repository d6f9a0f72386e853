// Tests of TokenMasking.swift: over ~10⁵ eligible tokens the selection rate is 15% and the
// [MASK] / random / unchanged split 80/10/10 within 5σ binomial bounds; [CLS], [SEP], [PAD]
// and padding positions are never selected; labels are the original ids at the positions.

import LinAlg
import Model
import XCTest

final class TokenMaskingTests: XCTestCase {
    let masking = TokenMasking(maskID: 4, vocabularySize: 1000, specialIDs: [0, 2, 3])

    /// `rows` sequences [CLS] w… [SEP] of 5…48 random non-special ids, padded with [PAD] to 50.
    func randomBatch(rows: Int, rng: inout SplitMix64) -> EncoderInput {
        let sequences: [[Int32]] = (0..<rows).map { _ in
            let n = 5 + Int(rng.next() % 44)
            return [2] + (0..<n).map { _ in Int32(5 + rng.next() % 995) } + [3]
        }
        return try! EncoderInput(sequences: sequences, padID: 0)
    }

    /// |observed − n·p| ≤ 5·√(n·p·(1−p)): fails by chance with probability < 10⁻⁶.
    func assertBinomial(_ observed: Int, trials n: Int, p: Double, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let sigma = (Double(n) * p * (1 - p)).squareRoot()
        XCTAssertLessThanOrEqual(abs(Double(observed) - Double(n) * p), 5 * sigma,
                                 "\(what): \(observed) of \(n), expected \(Double(n) * p) ± \(5 * sigma)", file: file, line: line)
    }

    func testSelectionIsFifteenPercentSplitEightyTenTen() throws {
        var rng = SplitMix64(seed: 11), maskRNG = SplitMix64(seed: 12)
        var eligible = 0, selected = 0, masked = 0, unchanged = 0, random = 0
        for _ in 0..<80 {
            let input = randomBatch(rows: 50, rng: &rng)
            let m = masking.mask(input, rng: &maskRNG)
            XCTAssertEqual(m.input.attentionMask, input.attentionMask)
            XCTAssertEqual(m.positions, m.positions.sorted())
            let selectedSet = Set(m.positions.map(Int.init))
            for r in 0..<input.rows {
                if input.attentionMask[r] != 0 && ![0, 2, 3].contains(input.inputIDs[r]) { eligible += 1 }
                // Every position not selected keeps its id.
                if !selectedSet.contains(r) { XCTAssertEqual(m.input.inputIDs[r], input.inputIDs[r]) }
            }
            for (k, r) in m.positions.enumerated() {
                let original = input.inputIDs[Int(r)], now = m.input.inputIDs[Int(r)]
                XCTAssertEqual(m.labels[k], original)
                XCTAssertTrue((0..<1000).contains(now))
                if now == 4 { masked += 1 } else if now == original { unchanged += 1 } else { random += 1 }
            }
            selected += m.positions.count
        }
        XCTAssertGreaterThan(eligible, 100_000)
        assertBinomial(selected, trials: eligible, p: 0.15, "selected")
        // A random replacement draws [MASK] or the original id itself with probability 1/V each.
        let v = 1000.0
        assertBinomial(masked, trials: selected, p: 0.8 + 0.1 / v, "[MASK]")
        assertBinomial(unchanged, trials: selected, p: 0.1 + 0.1 / v, "unchanged")
        assertBinomial(random, trials: selected, p: 0.1 * (v - 2) / v, "random")
    }

    func testSpecialTokensAndPaddingAreNeverSelected() throws {
        // Special ids also inside the text, and a non-special id (7) under padding.
        var input = try EncoderInput(sequences: [[2, 9, 3, 10, 0, 11, 2, 12, 3], [2, 13, 3]], padID: 7)
        input.inputIDs[9 + 5] = 7
        var everything = masking
        everything.selectProbability = 1
        var rng = SplitMix64(seed: 3)
        let all = everything.mask(input, rng: &rng)
        XCTAssertEqual(all.positions, [1, 3, 5, 7, 10], "with p = 1 exactly the non-special real tokens are selected")
        XCTAssertEqual(all.labels, [9, 10, 11, 12, 13])
        for _ in 0..<2000 {
            let m = masking.mask(input, rng: &rng)
            for r in m.positions { XCTAssertTrue([1, 3, 5, 7, 10].contains(r), "position \(r) selected") }
        }
    }

    func testABatchWithoutDrawsStillPredictsOneEligibleToken() throws {
        var none = masking
        none.selectProbability = 0
        var rng = SplitMix64(seed: 5)
        let input = try EncoderInput(sequences: [[2, 9, 10, 3], [2, 3]], padID: 0)
        for _ in 0..<50 {
            let m = none.mask(input, rng: &rng)
            XCTAssertEqual(m.positions.count, 1)
            XCTAssertTrue([1, 2].contains(m.positions[0]))
        }
        let onlySpecials = try EncoderInput(sequences: [[2, 3]], padID: 0)
        XCTAssertEqual(none.mask(onlySpecials, rng: &rng).positions, [])
    }
}
