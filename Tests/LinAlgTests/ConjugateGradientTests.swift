// Conjugate gradient on known SPD systems.

import LinAlg
import XCTest

final class ConjugateGradientTests: XCTestCase {
    /// 1-D Poisson matrix tridiag(−1, 2, −1) of order n, applied matrix-free.
    private func poisson(_ n: Int) -> LinearOperator {
        { x, y in
            for i in 0..<n {
                var v = 2 * x[i]
                if i > 0 { v -= x[i - 1] }
                if i < n - 1 { v -= x[i + 1] }
                y[i] = v
            }
        }
    }

    func testSolvesPoissonToKnownSolution() {
        let n = 50
        let truth = (0..<n).map { sin(Double($0) * 0.3) + Double($0) / 10 }
        var b = [Double](repeating: 0, count: n)
        truth.withUnsafeBufferPointer { t in b.withUnsafeMutableBufferPointer { poisson(n)(t, $0) } }
        let result = conjugateGradient(apply: poisson(n), rhs: b, tolerance: 1e-12, maxIterations: 200)
        XCTAssertTrue(result.converged)
        // In exact arithmetic CG terminates in ≤ n steps; allow a little rounding slack.
        XCTAssertLessThanOrEqual(result.iterations, n + 5)
        assertClose(result.x, truth, tolerance: 1e-8)
        XCTAssertEqual(result.residualHistory.count, result.iterations + 1)
        XCTAssertLessThanOrEqual(result.finalRelativeResidual, 1e-12)
    }

    func testDiagonalSystemConvergesInDistinctEigenvalueCountSteps() {
        // A = diag(1,1,2,2,3): 3 distinct eigenvalues ⇒ CG converges in 3 steps (closed-form property).
        let d: [Double] = [1, 1, 2, 2, 3]
        let result = conjugateGradient(apply: { x, y in for i in 0..<5 { y[i] = d[i] * x[i] } },
                                       rhs: [1, 2, 3, 4, 5], tolerance: 1e-12, maxIterations: 50)
        XCTAssertTrue(result.converged)
        XCTAssertEqual(result.iterations, 3)
        assertClose(result.x, [1, 2, 1.5, 2, 5.0 / 3], tolerance: 1e-12)
    }

    func testJacobiPreconditionerSolvesBadlyScaledDiagonalInOneStep() {
        let d: [Double] = [1e-3, 1, 1e3, 7]
        let result = conjugateGradient(apply: { x, y in for i in 0..<4 { y[i] = d[i] * x[i] } },
                                       rhs: [1, 1, 1, 1],
                                       preconditioner: { r, z in for i in 0..<4 { z[i] = r[i] / d[i] } },
                                       tolerance: 1e-12, maxIterations: 10)
        XCTAssertEqual(result.iterations, 1)
        assertClose(result.x, d.map { 1 / $0 }, tolerance: 1e-9)
    }

    func testStartsFromInitialGuessAndStopsAtMaxIterations() {
        let n = 40
        let b = [Double](repeating: 1, count: n)
        let exact = conjugateGradient(apply: poisson(n), rhs: b, tolerance: 1e-13, maxIterations: 500)
        let warm = conjugateGradient(apply: poisson(n), rhs: b, initial: exact.x, tolerance: 1e-10, maxIterations: 500)
        XCTAssertEqual(warm.iterations, 0, "an exact initial guess needs no iteration")
        let capped = conjugateGradient(apply: poisson(n), rhs: b, tolerance: 1e-14, maxIterations: 3)
        XCTAssertEqual(capped.iterations, 3)
        XCTAssertFalse(capped.converged)
    }
}
