// FixedPointScale: f is the largest with K·(B·2^f + 1) ≤ 2^62 (checked against the closed
// form), the round trip of a K-agent sum errs by ≤ K·2^-(f+1), values beyond the reported
// bound and unusable bounds are refused, and a sum beyond the range is refused on decode.

import XCTest
@testable import SecureSum

final class FixedPointScaleTests: XCTestCase {
    func testFractionBitsFollowTheClosedFormRule() throws {
        for (bound, agents) in [(1.0, 3), (0.05, 5), (1234.5, 4), (3e-7, 2), (2e15, 3)] {
            let scale = try FixedPointScale(tensor: "t", reportedBounds: [Double](repeating: bound, count: agents))
            // Largest f with K(B·2^f + 1) ≤ 2^62  ⇔  f = ⌊log2((2^62/K − 1)/B)⌋.
            let expected = Int((log2((pow(2, 62) / Double(agents) - 1) / bound)).rounded(.down))
            XCTAssertEqual(scale.fractionBits, min(expected, FixedPointScale.maxFractionBits), "B=\(bound) K=\(agents)")
            XCTAssertTrue(scale.isSafe)
            XCTAssertLessThanOrEqual(scale.sumLimit, Int64(1) << 62)
        }
        // The largest bound decides, whoever reported it.
        XCTAssertEqual(try FixedPointScale(tensor: "t", reportedBounds: [0.5, 8, 1]).fractionBits,
                       try FixedPointScale(tensor: "t", reportedBounds: [8, 8, 8]).fractionBits)
        // An all-zero tensor gets the cap, not an unbounded f.
        XCTAssertEqual(try FixedPointScale(tensor: "t", reportedBounds: [0, 0]).fractionBits, FixedPointScale.maxFractionBits)
    }

    func testReportedBoundIsThePowerOfTwoAtOrAboveTheLargestMagnitude() throws {
        XCTAssertEqual(try FixedPointScale.reportedBound(for: [0.3, -3.0, 1] as [Double], tensor: "t"), 4)
        XCTAssertEqual(try FixedPointScale.reportedBound(for: [4.0] as [Double], tensor: "t"), 4)
        XCTAssertEqual(try FixedPointScale.reportedBound(for: [Float(0.0009)], tensor: "t"), 1.0 / 1024)
        XCTAssertEqual(try FixedPointScale.reportedBound(for: [Float](repeating: 0, count: 3), tensor: "t"), 0)
        XCTAssertThrowsError(try FixedPointScale.reportedBound(for: [1, .nan] as [Float], tensor: "w")) {
            XCTAssertEqual($0 as? SecureSumError, .nonFinite(tensor: "w", index: 1))
        }
    }

    func testRoundTripOfAKAgentSumErrsByAtMostKHalfQuanta() throws {
        var rng = SeededGenerator(seed: 5)
        for agents in 3...5 {
            let terms = (0..<agents).map { i in (0..<2000).map { _ in rng.gaussian() * pow(10, Double(i - 2)) } }
            let bounds = try terms.map { try FixedPointScale.reportedBound(for: $0, tensor: "w") }
            let chosen = try FixedPointScale(tensor: "w", reportedBounds: bounds)
            // The round's f (quantum far below fp64's resolution of the sum) and a coarse f = 12
            // where the quantum dominates, so the K/2-quanta bound itself is what is checked.
            for scale in [chosen, FixedPointScale(fractionBits: 12, bound: chosen.bound, agents: agents)] {
                let encoded = try zip(terms, bounds).map { try scale.encode($0.0, ownBound: $0.1, tensor: "w") }
                let decoded = try scale.decode(sum: try PairwiseMask.sum(encoded), tensor: "w")
                let quantum = 1 / FixedPointScale.power(scale.fractionBits)
                var worstExcess = -Double.infinity, worst = 0.0
                for k in 0..<2000 {
                    let exact = compensatedSum(terms.map { $0[k] })
                    let error = abs(decoded[k] - exact)
                    // K half-quanta of rounding, plus the fp64 rounding of the decoded value and of the reference.
                    worstExcess = max(worstExcess, error - (Double(agents) * quantum / 2 + 2 * exact.ulp))
                    worst = max(worst, error)
                }
                XCTAssertLessThanOrEqual(worstExcess, 0, "K=\(agents) f=\(scale.fractionBits)")
                XCTAssertGreaterThan(worst, 0, "an exact round trip would mean the bound checks nothing")
                if scale.fractionBits == 12 { XCTAssertGreaterThan(worst, quantum / 4, "the coarse quantum shows in the error") }
            }
        }
    }

    /// Neumaier's compensated sum: the reference sum, exact to about one ulp for a few terms.
    private func compensatedSum(_ values: [Double]) -> Double {
        var sum = 0.0, compensation = 0.0
        for v in values {
            let t = sum + v
            compensation += abs(sum) >= abs(v) ? (sum - t) + v : (v - t) + sum
            sum = t
        }
        return sum + compensation
    }

    func testValueBeyondItsReportedBoundIsRefusedNotWrapped() throws {
        let scale = try FixedPointScale(tensor: "w", reportedBounds: [1, 1, 1])
        XCTAssertThrowsError(try scale.encode([0.5, -1.5] as [Double], ownBound: 1, tensor: "w")) {
            XCTAssertEqual($0 as? SecureSumError, .valueBeyondBound(tensor: "w", index: 1, value: -1.5, bound: 1))
        }
        // Claiming more than the round was told is refused too.
        XCTAssertThrowsError(try scale.encode([3.0] as [Double], ownBound: 4, tensor: "w")) {
            XCTAssertEqual($0 as? SecureSumError, .unusableBound(tensor: "w", bound: 4, agents: 3))
        }
        XCTAssertThrowsError(try scale.encode([Float.infinity], ownBound: 1, tensor: "w")) {
            XCTAssertEqual($0 as? SecureSumError, .nonFinite(tensor: "w", index: 0))
        }
    }

    func testUnusableBoundsAreRefused() {
        XCTAssertThrowsError(try FixedPointScale(tensor: "g", reportedBounds: [1, 4e18, 1])) {
            XCTAssertEqual($0 as? SecureSumError, .unusableBound(tensor: "g", bound: 4e18, agents: 3))
        }
        XCTAssertThrowsError(try FixedPointScale(tensor: "g", reportedBounds: [1, -1])) {
            XCTAssertEqual($0 as? SecureSumError, .unusableBound(tensor: "g", bound: -1, agents: 2))
        }
        let unsafe = FixedPointScale(fractionBits: 62, bound: 1, agents: 3)   // an aggregator-sent scale that could wrap
        XCTAssertFalse(unsafe.isSafe)
        XCTAssertThrowsError(try unsafe.encode([1.0] as [Double], ownBound: 1, tensor: "g")) {
            XCTAssertEqual($0 as? SecureSumError, .unusableBound(tensor: "g", bound: 1, agents: 3))
        }
    }

    func testSumBeyondTheRangeIsRefusedOnDecode() throws {
        // One agent reported B = 1 but uploads 2^61 (it skipped its own encoder's check).
        let scale = try FixedPointScale(tensor: "w", reportedBounds: [1, 1, 1])
        let honest = try scale.encode([0.9] as [Double], ownBound: 1, tensor: "w")
        let liar = [UInt64(1) << 61]
        let sum = try PairwiseMask.sum([honest, honest, liar])
        XCTAssertThrowsError(try scale.decode(sum: sum, tensor: "w")) {
            guard case .sumOutOfRange(tensor: "w", index: 0, _, let limit)? = $0 as? SecureSumError else { return XCTFail("\($0)") }
            XCTAssertEqual(limit, scale.sumLimit)
        }
    }
}
