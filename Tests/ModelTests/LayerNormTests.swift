// Finite-difference checks of layerNormForward/layerNormBackward, and its normalisation.

import LinAlg
@testable import Model
import XCTest

final class LayerNormTests: XCTestCase {
    func testLayerNormBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 2)
        let (n, c) = (3, 6)
        let x = randomFloats(n * c, &rng), g = randomFloats(c, &rng), b = randomFloats(c, &rng)
        let proj = randomFloats(n * c, &rng)
        func forward(_ x: [Float], _ g: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), r = m
            layerNormForward(out: &out, mean: &m, rstd: &r, inp: x, weight: g, bias: b, rows: n, dim: c, eps: 1e-12)
            return projected(out, proj)
        }
        var out = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), r = m
        layerNormForward(out: &out, mean: &m, rstd: &r, inp: x, weight: g, bias: b, rows: n, dim: c, eps: 1e-12)
        var dx = [Float](repeating: 0, count: n * c), dg = [Float](repeating: 0, count: c), db = dg
        layerNormBackward(dinp: &dx, dweight: &dg, dbias: &db, dout: proj, inp: x, weight: g, mean: m, rstd: r, rows: n, dim: c)
        // Smaller ε: the normalisation is curved enough that ε = 1e-2 leaves 1e-3 truncation error.
        assertMatchesFiniteDifferences(x, analytic: dx, eps: 3e-3, "dinp") { forward($0, g, b) }
        assertMatchesFiniteDifferences(g, analytic: dg, "dweight") { forward(x, $0, b) }
        assertMatchesFiniteDifferences(b, analytic: db, "dbias") { forward(x, g, $0) }
    }

    func testLayerNormOutputHasZeroMeanUnitVariance() {
        var rng = SplitMix64(seed: 3)
        let c = 64
        let x = randomFloats(c, std: 5, &rng).map { $0 + 3 }
        var out = [Float](repeating: 0, count: c), m: [Float] = [0], r: [Float] = [0]
        layerNormForward(out: &out, mean: &m, rstd: &r, inp: x, weight: [Float](repeating: 1, count: c),
                         bias: [Float](repeating: 0, count: c), rows: 1, dim: c, eps: 1e-12)
        let mean = out.reduce(0.0) { $0 + Double($1) } / Double(c)
        let variance = out.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(c)
        XCTAssertEqual(mean, 0, accuracy: 1e-6)
        XCTAssertEqual(variance, 1, accuracy: 1e-5)
    }
}
