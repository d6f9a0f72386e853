// Tensor storage, shapes, views and conversions.

import LinAlg
import XCTest

final class TensorTests: XCTestCase {
    func testStorageCountIsCheckedAgainstShape() {
        XCTAssertThrowsError(try Tensor<Float>(shape: [2, 3], storage: [1, 2, 3])) { error in
            XCTAssertEqual(error as? LinAlgError, .storageCountMismatch(shape: [2, 3], expected: 6, actual: 3))
        }
    }

    func testTransposeAndRowSlice() throws {
        let t = Tensor<Double>(rows: [[1, 2, 3], [4, 5, 6]])
        XCTAssertEqual(t.transposed().storage, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(t.transposed().shape, [3, 2])
        XCTAssertEqual(Array(t.rowSlice(1..<2)), [4, 5, 6])
        XCTAssertEqual(t.rows, 2)
        XCTAssertEqual(t.cols, 3)
        XCTAssertEqual(try t.reshaped([3, 2])[2, 1], 6)
    }

    func testMatrixViewBlockWritesThroughToStorage() {
        var t = Tensor<Float>(shape: [3, 4])
        t.withMatrixView { view in
            let block = view.block(rows: 1..<3, cols: 2..<4)
            XCTAssertEqual(block.ld, 4)
            block[1, 1] = 9        // element (2, 3) of the whole matrix
        }
        XCTAssertEqual(t[2, 3], 9)
        XCTAssertEqual(t.storage.filter { $0 != 0 }.count, 1)
    }

    func testSeededRandomNormalIsReproducibleWithUnitVariance() {
        var r1 = SplitMix64(seed: 5), r2 = SplitMix64(seed: 5)
        let a = Tensor<Double>(randomNormal: [100, 100], using: &r1)
        let b = Tensor<Double>(randomNormal: [100, 100], using: &r2)
        XCTAssertEqual(a, b)
        let mean = a.storage.reduce(0, +) / 10_000
        let variance = a.storage.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 10_000
        // 10⁴ samples: standard error of the mean 0.01, of the variance ≈ 0.014; 5σ bounds.
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(variance, 1, accuracy: 0.07)
    }

    func testConversionBetweenFloatAndDouble() {
        let t = Tensor<Float>(rows: [[0.5, -1.25]])
        XCTAssertEqual(t.converted(to: Double.self).storage, [0.5, -1.25])
        XCTAssertEqual(t.maxAbsDifference(Tensor<Float>(rows: [[0.5, -1]])), 0.25)
    }
}
