// Finite-difference checks of linearForward/linearBackward.

import LinAlg
@testable import Model
import XCTest

final class LinearTests: XCTestCase {
    func testLinearBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 1)
        let (n, c, oc) = (5, 4, 3)
        let x = randomFloats(n * c, &rng), w = randomFloats(oc * c, &rng), b = randomFloats(oc, &rng)
        let proj = randomFloats(n * oc, &rng)
        func forward(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * oc)
            linearForward(out: &out, inp: x, weight: w, bias: b, rows: n, inDim: c, outDim: oc)
            return projected(out, proj)
        }
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: oc * c)
        var db = [Float](repeating: 0, count: oc)
        linearBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: proj, inp: x, weight: w, rows: n, inDim: c, outDim: oc)
        assertMatchesFiniteDifferences(x, analytic: dx, "dinp") { forward($0, w, b) }
        assertMatchesFiniteDifferences(w, analytic: dw, "dweight") { forward(x, $0, b) }
        assertMatchesFiniteDifferences(b, analytic: db, "dbias") { forward(x, w, $0) }
    }

    func testLinearForwardMatchesExplicitSum() {
        // out[r][o] = Σ_i x[r][i]·W[o][i] + b[o], written out by hand for a 1×2 → 2 case.
        let x: [Float] = [1, 2], w: [Float] = [3, 4, 5, 6], b: [Float] = [0.5, -1]
        var out = [Float](repeating: 0, count: 2)
        linearForward(out: &out, inp: x, weight: w, bias: b, rows: 1, inDim: 2, outDim: 2)
        let expected: [Float] = [11.5, 16] // [1·3 + 2·4 + 0.5, 1·5 + 2·6 − 1]
        XCTAssertEqual(out, expected)
    }
}
