// Test support: central finite differences (Double-accumulated) against analytic gradients.

import LinAlg
import XCTest

/// n samples of N(0, std²) as Float.
func randomFloats(_ n: Int, std: Double = 1, _ rng: inout SplitMix64) -> [Float] {
    (0..<n).map { _ in Float(rng.nextNormal() * std) }
}

/// Σ wᵢ·outᵢ in Double: a scalar loss whose gradient w.r.t. out is w, so a layer's backward
/// called with dout = w must return the gradient of this loss.
func projected(_ out: [Float], _ w: [Float]) -> Double {
    var s = 0.0
    for i in out.indices { s += Double(out[i]) * Double(w[i]) }
    return s
}

/// Compares analytic[i] with (loss(x + εeᵢ) − loss(x − εeᵢ)) / 2ε for the given indices (all
/// when nil). The forward runs in Float, so the difference quotient carries rounding error
/// ≈ 1e-7·|loss|/ε; with ε = 1e-2 and losses of order 1–10 that is ≤ 1e-4, and the truncation
/// error ε²·f'''/6 is of the same order, hence the default tolerance of 2e-3·max(1, |g|).
func assertMatchesFiniteDifferences(_ x: [Float], analytic: [Float], indices: [Int]? = nil,
                                    eps: Float = 1e-2, tolerance: Double = 2e-3, _ what: String,
                                    file: StaticString = #filePath, line: UInt = #line,
                                    loss: ([Float]) -> Double) {
    XCTAssertEqual(x.count, analytic.count, "\(what): gradient count", file: file, line: line)
    var worst = 0.0
    var nonzero = 0
    for i in indices ?? Array(x.indices) {
        var plus = x, minus = x
        plus[i] += eps
        minus[i] -= eps
        let numeric = (loss(plus) - loss(minus)) / (Double(plus[i]) - Double(minus[i]))
        let err = abs(numeric - Double(analytic[i])) / max(1, abs(numeric))
        worst = max(worst, err)
        if abs(numeric) > 1e-3 { nonzero += 1 }
        XCTAssertLessThanOrEqual(err, tolerance, "\(what)[\(i)]: analytic \(analytic[i]) vs numeric \(numeric)",
                                 file: file, line: line)
    }
    // A gradient that is zero everywhere would pass trivially; every check here has signal.
    XCTAssertGreaterThan(nonzero, 0, "\(what): all finite differences vanished, the check proves nothing",
                         file: file, line: line)
}
