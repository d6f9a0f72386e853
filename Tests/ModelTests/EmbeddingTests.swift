// Finite-difference checks of embeddingForward/embeddingBackward (with repeated ids).

import LinAlg
@testable import Model
import XCTest

final class EmbeddingTests: XCTestCase {
    func testEmbeddingBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 4)
        let (b, t, c, v, p, s) = (2, 3, 4, 5, 4, 2)
        // id 3 appears three times so the scatter-add must accumulate.
        let ids: [Int32] = [3, 1, 3, 0, 3, 4], types: [Int32] = [0, 0, 1, 1, 0, 1]
        let wte = randomFloats(v * c, &rng), wpe = randomFloats(p * c, &rng), wtt = randomFloats(s * c, &rng)
        let proj = randomFloats(b * t * c, &rng)
        func forward(_ wte: [Float], _ wpe: [Float], _ wtt: [Float]) -> Double {
            var out = [Float](repeating: 0, count: b * t * c)
            embeddingForward(out: &out, ids: ids, types: types, wte: wte, wpe: wpe, wtt: wtt, batch: b, length: t, dim: c)
            return projected(out, proj)
        }
        var dwte = [Float](repeating: 0, count: v * c), dwpe = [Float](repeating: 0, count: p * c)
        var dwtt = [Float](repeating: 0, count: s * c)
        embeddingBackward(dwte: &dwte, dwpe: &dwpe, dwtt: &dwtt, dout: proj, ids: ids, types: types, batch: b, length: t, dim: c)
        assertMatchesFiniteDifferences(wte, analytic: dwte, "dwte") { forward($0, wpe, wtt) }
        assertMatchesFiniteDifferences(wpe, analytic: dwpe, "dwpe") { forward(wte, $0, wtt) }
        assertMatchesFiniteDifferences(wtt, analytic: dwtt, "dwtt") { forward(wte, wpe, $0) }
        // Row 2 of wte is never read: its gradient is exactly zero.
        XCTAssertEqual(Array(dwte[(2 * c)..<(3 * c)]), [Float](repeating: 0, count: c))
    }
}
