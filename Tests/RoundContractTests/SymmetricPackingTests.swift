// SymmetricPacking: the upper triangle row by row, d(d+1)/2 entries, and back to the matrix.

import XCTest
@testable import RoundContract

final class SymmetricPackingTests: XCTestCase {
    func testPacksTheUpperTriangleRowByRowAndUnpacksTheSymmetricMatrix() throws {
        let full: [Double] = [1, 2, 3,
                              2, 4, 5,
                              3, 5, 6]
        XCTAssertEqual(try SymmetricPacking.pack(full, dimension: 3), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try SymmetricPacking.unpack([1, 2, 3, 4, 5, 6], dimension: 3), full)
    }

    func testRoundTripOfARandomSymmetricMatrixAndCounts() throws {
        let d = 17
        var full = [Float](repeating: 0, count: d * d)
        // Distinct entries (r·d + c of the upper triangle) so a misplaced one shows.
        for r in 0..<d { for c in r..<d { let v = Float(r * d + c); full[r * d + c] = v; full[c * d + r] = v } }
        let packed = try SymmetricPacking.pack(full, dimension: d)
        XCTAssertEqual(packed.count, d * (d + 1) / 2)
        XCTAssertEqual(try SymmetricPacking.unpack(packed, dimension: d), full)
        XCTAssertEqual(SymmetricPacking.packedCount(dimension: 384), 73920)
    }

    func testWrongLengthsAreRefused() {
        XCTAssertThrowsError(try SymmetricPacking.pack([1.0, 2, 3], dimension: 2)) {
            XCTAssertEqual($0 as? SymmetricPackingError, .lengthMismatch(what: "symmetric 2×2 matrix", expected: 4, actual: 3))
        }
        XCTAssertThrowsError(try SymmetricPacking.unpack([1.0, 2], dimension: 2)) {
            XCTAssertEqual($0 as? SymmetricPackingError, .lengthMismatch(what: "packed 2×2 matrix", expected: 3, actual: 2))
        }
    }
}
