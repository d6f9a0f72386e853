// Finite-difference checks of the elementwise pairs: GELU (erf form), tanh and dropout.

import Foundation
import LinAlg
@testable import Model
import XCTest

final class ActivationTests: XCTestCase {
    func testGeluBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 5)
        let n = 20
        let x = randomFloats(n, std: 2, &rng), proj = randomFloats(n, &rng)
        func forward(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            geluForward(out: &out, inp: x, count: n)
            return projected(out, proj)
        }
        var dx = [Float](repeating: 0, count: n)
        geluBackward(dinp: &dx, inp: x, dout: proj, count: n)
        assertMatchesFiniteDifferences(x, analytic: dx, "dgelu", loss: forward)
    }

    func testGeluIsTheErfForm() {
        // GELU(1) = 0.5·(1 + erf(1/√2)) = Φ(1) = 0.8413447460685429; the tanh approximation gives 0.8411920.
        var out: [Float] = [0]
        geluForward(out: &out, inp: [1], count: 1)
        XCTAssertEqual(Double(out[0]), 0.8413447460685429, accuracy: 2e-7)
    }

    func testTanhBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 6)
        let n = 12
        let x = randomFloats(n, &rng), proj = randomFloats(n, &rng)
        func forward(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            tanhForward(out: &out, inp: x, count: n)
            return projected(out, proj)
        }
        var out = [Float](repeating: 0, count: n), dx = out
        tanhForward(out: &out, inp: x, count: n)
        tanhBackward(dinp: &dx, out: out, dout: proj, count: n)
        assertMatchesFiniteDifferences(x, analytic: dx, "dtanh", loss: forward)
    }

    func testDropoutBackwardMatchesFiniteDifferencesAndKeepsTheExpectation() {
        var rng = SplitMix64(seed: 7)
        let n = 10_000
        var mask = [Float](repeating: 0, count: n)
        dropoutMask(&mask, count: n, p: 0.1, rng: &rng)
        let dropped = mask.filter { $0 == 0 }.count
        // Binomial(10000, 0.1): sd 30, so ±150 is 5 sd.
        XCTAssertEqual(Double(dropped), 1000, accuracy: 150)
        XCTAssertTrue(mask.allSatisfy { $0 == 0 || abs($0 - 1 / 0.9) < 1e-6 })

        let m = 16
        let x = randomFloats(m, &rng), proj = randomFloats(m, &rng), small = Array(mask[0..<m])
        func forward(_ x: [Float]) -> Double {
            var out = [Float](repeating: 0, count: m)
            dropoutForward(out: &out, inp: x, mask: small, count: m)
            return projected(out, proj)
        }
        var dx = [Float](repeating: 0, count: m)
        dropoutBackward(dinp: &dx, dout: proj, mask: small, count: m)
        assertMatchesFiniteDifferences(x, analytic: dx, "ddropout", loss: forward)
    }
}
