// Tests of Methods/Average.swift: the weighted mean, and the numpy fixture (incl. heads modes).

import LinAlg
@testable import Merge
import XCTest

final class AverageTests: XCTestCase {
    func testWeightedAverageIsSumOfWeightedTensorsOverSumOfWeights() throws {
        let a = try NamedTensors([("t", Tensor(rows: [[1, 2], [3, 4]]))])
        let b = try NamedTensors([("t", Tensor(rows: [[5, 6], [7, 8]]))])
        let accumulator = try Average().makeAccumulator(parameters: [:])
        try accumulator.add(model: a, statistics: NamedStatistics(), weight: 1, name: "a")
        try accumulator.add(model: b, statistics: NamedStatistics(), weight: 3, name: "b")
        let merged = try accumulator.finish()
        XCTAssertEqual(merged.tensors["t"], Tensor(rows: [[4, 5], [6, 7]]))
        XCTAssertEqual(merged.report.models, ["a", "b"])
        XCTAssertEqual(merged.report.weights, [1, 3])
    }

    func testMatchesNumpyFixture() throws { try TestSupport.checkFixture(method: "average") }

    func testFinishTwiceIsAnError() throws {
        let accumulator = try Average().makeAccumulator(parameters: [:])
        try accumulator.add(model: try NamedTensors([("t", Tensor(rows: [[1]]))]), statistics: NamedStatistics())
        _ = try accumulator.finish()
        XCTAssertThrowsError(try accumulator.finish()) { XCTAssertEqual($0 as? MergeError, .finishedTwice) }
    }
}
