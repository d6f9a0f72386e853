// Tests of Ensemble.swift: the elementwise mean of logits and the shape check.

import LinAlg
@testable import Merge
import XCTest

final class EnsembleTests: XCTestCase {
    func testAverageLogitsIsTheElementwiseMean() throws {
        let mean = try Ensemble.averageLogits([Tensor(rows: [[1, 2]]), Tensor(rows: [[3, -2]]), Tensor(rows: [[2, 3]])])
        XCTAssertEqual(mean, Tensor(rows: [[2, 1]]))
    }

    func testMismatchedLogitShapesAreNamed() throws {
        XCTAssertThrowsError(try Ensemble.averageLogits([Tensor<Float>(shape: [2, 3]), Tensor<Float>(shape: [3, 2])])) {
            XCTAssertEqual($0 as? MergeError, .shapeMismatch(model: "model1", tensor: "logits", expected: [2, 3], actual: [3, 2]))
        }
    }
}
