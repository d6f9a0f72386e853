// Finite-difference checks of softmax cross-entropy and sigmoid BCE, and their closed forms.

import Foundation
import LinAlg
@testable import Model
import XCTest

final class LossTests: XCTestCase {
    func testSoftmaxCrossEntropyBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 11)
        let (b, k) = (4, 3)
        let z = randomFloats(b * k, std: 2, &rng), labels: [Int32] = [0, 2, 1, 2]
        func loss(_ z: [Float]) -> Double {
            var p = [Float](repeating: 0, count: b * k)
            return softmaxCrossEntropyForward(probs: &p, logits: z, labels: labels, batch: b, classes: k)
        }
        var p = [Float](repeating: 0, count: b * k), dz = p
        softmaxCrossEntropyForward(probs: &p, logits: z, labels: labels, batch: b, classes: k)
        softmaxCrossEntropyBackward(dlogits: &dz, probs: p, labels: labels, batch: b, classes: k)
        // Loss of order 1 and gradients of order 1/B: a tighter ε keeps truncation small.
        assertMatchesFiniteDifferences(z, analytic: dz, eps: 1e-3, tolerance: 1e-3, "dlogits", loss: loss)
    }

    func testSoftmaxCrossEntropyOfUniformLogitsIsLogK() {
        var p = [Float](repeating: 0, count: 5)
        let l = softmaxCrossEntropyForward(probs: &p, logits: [Float](repeating: 7, count: 5), labels: [3], batch: 1, classes: 5)
        XCTAssertEqual(l, log(5), accuracy: 1e-12)
    }

    func testSigmoidBCEBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 12)
        let (b, k) = (3, 4)
        let z = randomFloats(b * k, std: 2, &rng)
        let y: [Float] = [1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1]
        func loss(_ z: [Float]) -> Double {
            var p = [Float](repeating: 0, count: b * k)
            return sigmoidBCEForward(probs: &p, logits: z, targets: y, batch: b, classes: k)
        }
        var p = [Float](repeating: 0, count: b * k), dz = p
        sigmoidBCEForward(probs: &p, logits: z, targets: y, batch: b, classes: k)
        sigmoidBCEBackward(dlogits: &dz, probs: p, targets: y, batch: b, classes: k)
        assertMatchesFiniteDifferences(z, analytic: dz, eps: 1e-3, tolerance: 1e-3, "dlogits", loss: loss)
    }

    func testSigmoidBCEAtZeroLogitsIsLog2AndStableForLargeLogits() {
        var p = [Float](repeating: 0, count: 2)
        XCTAssertEqual(sigmoidBCEForward(probs: &p, logits: [0, 0], targets: [1, 0], batch: 1, classes: 2), log(2), accuracy: 1e-12)
        // z = ±100 with the wrong target: loss 100 each, finite (a naive log σ(z) would give inf).
        XCTAssertEqual(sigmoidBCEForward(probs: &p, logits: [100, -100], targets: [0, 1], batch: 1, classes: 2), 100, accuracy: 1e-9)
    }
}
