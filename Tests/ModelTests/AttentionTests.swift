// Finite-difference checks of attentionForward/attentionBackward with a padding mask and dropout.

import Foundation
import LinAlg
@testable import Model
import XCTest

final class AttentionTests: XCTestCase {
    // B = 2, T = 4, C = 6, H = 2 (hs = 3); example 1 has its last position padded.
    let shape = AttentionShape(batch: 2, length: 4, channels: 6, heads: 2)
    var mask: [Int32] = [1, 1, 1, 1, 1, 1, 1, 0]

    func run(_ q: [Float], _ k: [Float], _ v: [Float], _ proj: [Float], drop: [Float]?) -> Double {
        let n = shape.batch * shape.length * shape.channels
        var out = [Float](repeating: 0, count: n), probs = [Float](repeating: 0, count: shape.probsCount)
        var pd = probs
        if let drop {
            attentionForward(out: &out, probs: &probs, q: q, k: k, v: v, keyMask: mask, shape: shape,
                             dropMask: drop, probsDropped: &pd)
        } else {
            attentionForward(out: &out, probs: &probs, q: q, k: k, v: v, keyMask: mask, shape: shape)
        }
        return projected(out, proj)
    }

    func check(withDropout: Bool) {
        var rng = SplitMix64(seed: withDropout ? 9 : 8)
        let n = shape.batch * shape.length * shape.channels
        let q = randomFloats(n, &rng), k = randomFloats(n, &rng), v = randomFloats(n, &rng), proj = randomFloats(n, &rng)
        var drop: [Float]? = nil
        if withDropout {
            var m = [Float](repeating: 0, count: shape.probsCount)
            dropoutMask(&m, count: m.count, p: 0.3, rng: &rng)
            drop = m
        }
        var out = [Float](repeating: 0, count: n), probs = [Float](repeating: 0, count: shape.probsCount), pd = probs
        if let drop {
            attentionForward(out: &out, probs: &probs, q: q, k: k, v: v, keyMask: mask, shape: shape, dropMask: drop, probsDropped: &pd)
        } else {
            attentionForward(out: &out, probs: &probs, q: q, k: k, v: v, keyMask: mask, shape: shape)
        }
        var dq = [Float](repeating: 0, count: n), dk = dq, dv = dq
        var scratch = [Float](repeating: 0, count: attentionScratchCount(shape))
        if let drop {
            attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: proj, probs: probs, q: q, k: k, v: v, keyMask: mask, shape: shape,
                              scratch: &scratch, dropMask: drop, probsDropped: pd)
        } else {
            attentionBackward(dq: &dq, dk: &dk, dv: &dv, dout: proj, probs: probs, q: q, k: k, v: v, keyMask: mask, shape: shape, scratch: &scratch)
        }
        assertMatchesFiniteDifferences(q, analytic: dq, "dq") { run($0, k, v, proj, drop: drop) }
        assertMatchesFiniteDifferences(k, analytic: dk, "dk") { run(q, $0, v, proj, drop: drop) }
        assertMatchesFiniteDifferences(v, analytic: dv, "dv") { run(q, k, $0, proj, drop: drop) }
        // Padded keys influence nothing: their k and v gradients are 0.
        for position in mask.indices where mask[position] == 0 {
            let padded = position * shape.channels
            XCTAssertEqual(Array(dk[padded..<(padded + shape.channels)]), [Float](repeating: 0, count: shape.channels))
            XCTAssertEqual(Array(dv[padded..<(padded + shape.channels)]), [Float](repeating: 0, count: shape.channels))
        }
    }

    func testAttentionBackwardMatchesFiniteDifferences() { check(withDropout: false) }

    func testAttentionBackwardWithDropoutMatchesFiniteDifferences() { check(withDropout: true) }

    /// A mask that is not right padding (a hole at example 0, position 1) takes the general path.
    func testAttentionBackwardWithInteriorMaskMatchesFiniteDifferences() {
        mask = [1, 0, 1, 1, 1, 1, 1, 0]
        check(withDropout: false)
        check(withDropout: true)
    }

    func testAttentionGivesPaddedKeysZeroProbabilityAndRowsSumToOne() {
        var rng = SplitMix64(seed: 10)
        let n = shape.batch * shape.length * shape.channels
        let q = randomFloats(n, &rng), k = randomFloats(n, &rng), v = randomFloats(n, &rng)
        var out = [Float](repeating: 0, count: n), probs = [Float](repeating: 0, count: shape.probsCount)
        attentionForward(out: &out, probs: &probs, q: q, k: k, v: v, keyMask: mask, shape: shape)
        let T = shape.length
        for bh in 0..<(shape.batch * shape.heads) {
            for i in 0..<T {
                let row = probs[((bh * T + i) * T)..<((bh * T + i + 1) * T)]
                XCTAssertEqual(Double(row.reduce(0, +)), 1, accuracy: 1e-6)
                if bh >= shape.heads { XCTAssertEqual(row.last, 0) }
            }
        }
    }
}
