// Tests of Methods/Ties.swift: trimming, sign election and the disjoint mean on a hand-worked
// example, and the numpy fixture.

import LinAlg
@testable import Merge
import XCTest

final class TiesTests: XCTestCase {
    func testTrimElectAndDisjointMeanOnAWorkedExample() throws {
        let base = try NamedTensors([("w", Tensor(shape: [4], repeating: 0))])
        // density 0.5 keeps the 2 largest |τ| of each model:
        //   a: τ = ( 3, −1,  2, 0.5) → ( 3,  0,  2, 0)
        //   b: τ = (−1, −4,  1, 0.2) → ( 0, −4,  1, 0)
        //   c: τ = (−2,  0.1, −5, 3) → (−2,  0, −5, 3)
        // sums: (1, −4, −2, 3) → signs (+, −, −, +); agreeing means: 3, −4, −5, 3.
        let models: [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)] = try [
            ("a", NamedTensors([("w", Tensor(shape: [4], storage: [3, -1, 2, 0.5]))]), NamedStatistics(), 1),
            ("b", NamedTensors([("w", Tensor(shape: [4], storage: [-1, -4, 1, 0.2]))]), NamedStatistics(), 1),
            ("c", NamedTensors([("w", Tensor(shape: [4], storage: [-2, 0.1, -5, 3]))]), NamedStatistics(), 1),
        ]
        let merged = try Ties().merge(models: models, parameters: ["density": .number(0.5), "lambda": .number(1)], base: base)
        XCTAssertEqual(merged.tensors["w"]!.storage, [3, -4, -5, 3])
    }

    func testMatchesNumpyFixture() throws { try TestSupport.checkFixture(method: "ties") }
}
