// Cholesky, eigen and the solveSymmetric fallback chain against numpy/scipy values.

import LinAlg
import XCTest

final class SolveSymmetricTests: XCTestCase {
    func testCholeskySolveManyRightHandSidesMatchesScipy() throws {
        let f = try LinAlgFixture.load()["spd"]!
        let a = try LinAlgFixture.matrix(f, "a", 6, 6)
        let b = try LinAlgFixture.matrix(f, "b", 6, 3)
        let factor = try CholeskyFactor(a)
        assertClose(try factor.solve(b).storage, try LinAlgFixture.doubles(f, "x"), tolerance: 1e-10)
        // dpocon's 1-norm estimate is within a factor of 3 of the true condition number (usually exact for n = 6).
        let cond = 1 / factor.reciprocalCondition()
        let truth = try XCTUnwrap(f["cond1"] as? Double)
        XCTAssertGreaterThan(cond, truth / 3)
        XCTAssertLessThan(cond, truth * 3)
    }

    /// congruence(M) = U⁻ᵀ M U⁻¹ for A = UᵀU (dsygst): A itself whitens to the identity, and
    /// for another symmetric M, Uᵀ · congruence(M) · U (two trmm through multiply) gives M back;
    /// multiply's inverse forms undo its plain ones.
    func testCongruenceWhitensByTheFactor() throws {
        let f = try LinAlgFixture.load()["spd"]!
        let a = try LinAlgFixture.matrix(f, "a", 6, 6)
        let factor = try CholeskyFactor(a)
        let identity = try factor.congruence(a)
        for i in 0..<6 { for j in 0..<6 { XCTAssertEqual(identity[i, j], i == j ? 1 : 0, accuracy: 1e-12) } }
        var m = Tensor<Double>(shape: [6, 6])
        for i in 0..<6 { for j in 0..<6 { m[i, j] = Double((i + 1) * (j + 1) % 7) - 3 + (i == j ? 2 : 0) } }
        var back = try factor.congruence(m)
        for i in 0..<6 { for j in 0..<6 { XCTAssertEqual(back[i, j], back[j, i], accuracy: 1e-14) } }
        back.withUnsafeMutableBufferPointer { p in
            factor.multiply(.left, p.baseAddress!, count: 6, transposed: true, inverse: false)
            factor.multiply(.right, p.baseAddress!, count: 6, transposed: false, inverse: false)
        }
        assertClose(back.storage, m.storage, tolerance: 1e-10)
        var x = m
        x.withUnsafeMutableBufferPointer { p in
            factor.multiply(.right, p.baseAddress!, count: 6, transposed: true, inverse: false)
            factor.multiply(.right, p.baseAddress!, count: 6, transposed: true, inverse: true)
        }
        assertClose(x.storage, m.storage, tolerance: 1e-10)
    }

    func testEigenvaluesMatchNumpyAndVectorsReconstruct() throws {
        let f = try LinAlgFixture.load()["spd"]!
        let a = try LinAlgFixture.matrix(f, "a", 6, 6)
        let eigen = try SymmetricEigen(a)
        assertClose(eigen.values, try LinAlgFixture.doubles(f, "eigenvalues"), tolerance: 1e-10)
        // V diag(λ) Vᵀ = A.
        var scaled = eigen.vectors
        for i in 0..<6 { for j in 0..<6 { scaled[i, j] *= eigen.values[j] } }
        assertClose(try matmul(scaled, eigen.vectors, transposeB: true).storage, a.storage, tolerance: 1e-10)
    }

    func testNotPositiveDefiniteNamesFailingMinor() {
        // Leading 1×1 minor is 1 > 0; the 2×2 minor is 1·1 − 2·2 < 0.
        let a = Tensor<Double>(rows: [[1, 2, 0], [2, 1, 0], [0, 0, 1]])
        XCTAssertThrowsError(try CholeskyFactor(a)) { error in
            XCTAssertEqual(error as? LinAlgError, .notPositiveDefinite(minor: 2, size: 3))
        }
    }

    func testWellConditionedTakesCholeskyPath() throws {
        let f = try LinAlgFixture.load()["spd"]!
        let solution = try solveSymmetric(try LinAlgFixture.matrix(f, "a", 6, 6), try LinAlgFixture.matrix(f, "b", 6, 3))
        XCTAssertEqual(solution.path, .cholesky)
        assertClose(solution.x.storage, try LinAlgFixture.doubles(f, "x"), tolerance: 1e-10)
    }

    func testExactlySingularFallsBackAndGivesMinimumNormSolution() throws {
        let f = try LinAlgFixture.load()["singular"]!
        let a = try LinAlgFixture.matrix(f, "a", 6, 6)
        let b = try LinAlgFixture.matrix(f, "b", 6, 2)
        let solution = try solveSymmetric(a, b)
        XCTAssertNotEqual(solution.path, .cholesky, "a rank-3 matrix must not pass as well-conditioned")
        // Jitter (tiny ridge) or pinv: either way the answer is pinv(A)·B to within the
        // ridge's bias, relative jitter ≤ 1e-6 of the mean diagonal ⇒ error ≲ 1e-5 here.
        assertClose(solution.x.storage, try LinAlgFixture.doubles(f, "x_pinv"), tolerance: 1e-5, "\(solution.path)")
        // And A·X reproduces B.
        assertClose(try matmul(a, solution.x).storage, b.storage, tolerance: 1e-6)
    }

    func testIndefiniteMatrixReachesPseudoInverseWithRank() throws {
        // diag(2, −3, 0): no jitter up to 1e-6·mean makes it positive definite.
        let a = Tensor<Double>(rows: [[2, 0, 0], [0, -3, 0], [0, 0, 0]])
        let b = Tensor<Double>(rows: [[4], [6], [0]])
        let solution = try solveSymmetric(a, b)
        XCTAssertEqual(solution.path, .pseudoInverse(rank: 2))
        assertClose(solution.x.storage, [2, -2, 0], tolerance: 1e-12)
        XCTAssertEqual(solution.conditionEstimate, 1.5, accuracy: 1e-12)    // |−3| / |2|
    }

    func testIllConditionedHilbertStillSolvesWithSmallResidual() throws {
        let f = try LinAlgFixture.load()["hilbert"]!
        let a = try LinAlgFixture.matrix(f, "a", 10, 10)
        let b = try Tensor(shape: [10], storage: LinAlgFixture.doubles(f, "b"))
        let solution = try solveSymmetric(a, b)
        let truth = try XCTUnwrap(f["cond2"] as? Double)
        XCTAssertGreaterThan(solution.conditionEstimate, truth / 100, "condition estimate \(solution.conditionEstimate) vs \(truth)")
        // Backward error: ‖A x − b‖ / ‖b‖ small even though x itself is ill-determined.
        let ax = try matmul(a, try solution.x.reshaped([10, 1])).storage
        let residual = zip(ax, b.storage).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        let norm = b.storage.map { $0 * $0 }.reduce(0, +).squareRoot()
        XCTAssertLessThan(residual / norm, 1e-8, "path \(solution.path)")
    }

    func testNonFiniteInputIsRejectedByName() {
        let a = Tensor<Double>(rows: [[1, .nan], [.nan, 1]])
        XCTAssertThrowsError(try solveSymmetric(a, Tensor<Double>(rows: [[1], [1]]))) { error in
            XCTAssertEqual(error as? LinAlgError, .nonFinite(operation: "solveSymmetric (matrix)"))
        }
    }
}
