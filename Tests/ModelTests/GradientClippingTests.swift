// Tests for clipGradientNorm against hand computations (a 3-4-5 triangle across two buffers).

import XCTest
@testable import Model

final class GradientClippingTests: XCTestCase {
    func clip(_ first: inout [Float], _ second: inout [Float], maxNorm: Float) -> Double {
        first.withUnsafeMutableBufferPointer { a in
            second.withUnsafeMutableBufferPointer { b in clipGradientNorm([a, b], maxNorm: maxNorm) }
        }
    }

    func testNormAboveBoundScalesEveryBufferTogether() {
        var a: [Float] = [3, 0], b: [Float] = [4]
        let norm = clip(&a, &b, maxNorm: 1)
        XCTAssertEqual(norm, 5)  // √(9 + 16), before clipping
        // Scaled by 1 / (5 + 1e-6): 0.6 and 0.8 to within 1e-6.
        XCTAssertEqual(a[0], 0.6, accuracy: 1e-6)
        XCTAssertEqual(a[1], 0)
        XCTAssertEqual(b[0], 0.8, accuracy: 1e-6)
    }

    func testNormBelowBoundLeavesGradientsUntouched() {
        var a: [Float] = [3, 0], b: [Float] = [4]
        XCTAssertEqual(clip(&a, &b, maxNorm: 10), 5)
        XCTAssertEqual(a, [3, 0])
        XCTAssertEqual(b, [4])
    }

    func testNormIsAccumulatedInDouble() {
        // 2²⁰ entries of 1e-3: Σ g² ≈ 1.048576, norm ≈ 1.024. Summing 2²⁰ terms in Double errs by
        // at most ~2²⁰·2⁻⁵³ ≈ 1e-10 relative; sequentially in Float it would be ~3e-3 (1.0273 instead of 1.0240).
        var a = [Float](repeating: 1e-3, count: 1 << 20), b: [Float] = []
        let norm = clip(&a, &b, maxNorm: 100)
        XCTAssertEqual(norm, (Double(Float(1e-3)) * Double(Float(1e-3)) * Double(1 << 20)).squareRoot(), accuracy: 1e-9)
    }
}
