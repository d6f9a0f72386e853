// The SIMD exp and erf against Foundation's double-precision exp and erf on dense grids. erf is
// allowed 4e-7: 1.5e-7 from the A&S formula plus Float rounding in 1 − poly·e^{−x²}.

import Foundation
@testable import Model
import XCTest

final class VectorMathTests: XCTestCase {
    func testVectorExpIsWithinFourEMinus7RelativeOfFoundation() {
        // 2001 points over [−80, 80] (not a multiple of 16, so the tail path runs too).
        var xs = (0...2000).map { Float(-80 + 0.08 * Double($0)) }
        let truth = xs.map { exp(Double($0)) }
        vectorExp(&xs, count: xs.count)
        for (i, v) in xs.enumerated() {
            XCTAssertEqual(Double(v), truth[i], accuracy: 4e-7 * truth[i], "exp at index \(i)")
        }
    }

    func testSIMDErfIsWithinFourEMinus7OfFoundation() {
        for start in stride(from: -5.0, to: 5.0, by: 0.16) {
            let x = SIMD16<Float>((0..<16).map { Float(start + 0.01 * Double($0)) })
            let e = simdErf(x, expNegSquare: simdExp(-x * x))
            for i in 0..<16 {
                XCTAssertEqual(Double(e[i]), erf(Double(x[i])), accuracy: 4e-7, "erf(\(x[i]))")
            }
        }
    }
}
