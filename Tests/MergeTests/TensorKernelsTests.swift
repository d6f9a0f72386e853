// TensorKernels.allFinite: a NaN or an infinity anywhere — inside the sixteen-lane part, in a
// block's scalar tail, at a block boundary, in the last element — is found; large finite values
// (whose x − x is still 0) are not mistaken for one.

@testable import Merge
import LinAlg
import XCTest

final class TensorKernelsTests: XCTestCase {
    func testAllFiniteFindsEveryNonFiniteValueWhereverItSits() throws {
        for count in [1, 15, 16, 17, 1023, 1024, 1025, 5000] {
            let finite = (0..<count).map { Float($0 % 7) * (($0 % 2 == 0) ? Float.greatestFiniteMagnitude / 8 : -1e-30) }
            XCTAssertTrue(TensorKernels.allFinite(try Tensor(shape: [count], storage: finite)), "\(count) finite values")
            for position in Set([0, count / 2, count - 1, min(1023, count - 1), min(1024, count - 1), min(16, count - 1)]) {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var values = finite
                    values[position] = bad
                    XCTAssertFalse(TensorKernels.allFinite(try Tensor(shape: [count], storage: values)), "\(bad) at \(position) of \(count)")
                }
            }
        }
    }
}
