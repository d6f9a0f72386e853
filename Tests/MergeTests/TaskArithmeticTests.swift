// Tests of Methods/TaskArithmetic.swift: base + λ Σ task vectors, the base-prefix rule, the
// head without a base counterpart, the numpy fixture and the missing base.

import LinAlg
@testable import Merge
import XCTest

final class TaskArithmeticTests: XCTestCase {
    func testSingleModelWithLambdaOneIsTheModelAndPrefixIsStripped() throws {
        var rng = SplitMix64(seed: 21)
        let base = try NamedTensors([("encoder.w", TestSupport.random([3, 2], &rng))])
        let model = try NamedTensors([("bert.encoder.w", TestSupport.random([3, 2], &rng)),
                                      ("classifier.weight", TestSupport.random([2, 2], &rng))])
        let result = try TaskArithmetic().merge(models: [("a", model, NamedStatistics(), 1)], parameters: [:], base: base)
        XCTAssertLessThanOrEqual(TestSupport.maxRelativeDifference(result.tensors["bert.encoder.w"]!, model["bert.encoder.w"]!), 1e-7)
        XCTAssertEqual(result.report.entry("bert.encoder.w")?.rule, "task_arithmetic")
        XCTAssertEqual(result.report.entry("classifier.weight")?.rule, "average")
        XCTAssertEqual(result.report.entry("classifier.weight")?.note, "no counterpart in the base model")
    }

    func testTwoTaskVectorsAreSummedAndScaled() throws {
        let base = try NamedTensors([("w", Tensor(rows: [[1, 1]]))])
        let a = try NamedTensors([("w", Tensor(rows: [[2, 0]]))])      // τ = ( 1, −1)
        let b = try NamedTensors([("w", Tensor(rows: [[4, 1]]))])      // τ = ( 3,  0)
        let result = try TaskArithmetic().merge(models: [("a", a, NamedStatistics(), 1), ("b", b, NamedStatistics(), 1)],
                                                parameters: ["lambda": .number(0.5)], base: base)
        XCTAssertEqual(result.tensors["w"], Tensor(rows: [[3, 0.5]]))   // 1 + 0.5·4, 1 + 0.5·(−1)
    }

    func testMatchesNumpyFixture() throws { try TestSupport.checkFixture(method: "task_arithmetic") }

    func testBaseShapeMismatchNamesBothShapes() throws {
        let base = try NamedTensors([("w", Tensor<Float>(shape: [2, 3]))])
        let model = try NamedTensors([("w", Tensor<Float>(shape: [3, 2]))])
        XCTAssertThrowsError(try TaskArithmetic().merge(models: [("a", model, NamedStatistics(), 1)], parameters: [:], base: base)) {
            XCTAssertEqual($0 as? MergeError, .shapeMismatch(model: "base", tensor: "w", expected: [3, 2], actual: [2, 3]))
        }
    }

    func testMissingBaseIsAnError() throws {
        XCTAssertThrowsError(try TaskArithmetic().makeAccumulator(parameters: [:], base: nil)) {
            XCTAssertEqual($0 as? MergeError, .baseModelRequired(method: "task_arithmetic"))
        }
    }
}
