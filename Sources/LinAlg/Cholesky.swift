// Cholesky factorisation A = UᵀU of a symmetric positive definite matrix (fp64, LAPACK
// potrf/pocon, BLAS trsm), solving for many right-hand sides at once.
//
// LAPACKE's row-major entry points transpose into a scratch copy and back. A symmetric
// matrix needs no transposition: its row-major upper triangle is, byte for byte, the
// column-major lower triangle. So every call here is column-major with uplo 'L' on
// row-major data, and the solves go through row-major BLAS trsm, which copies nothing.
// LAPACKE's `_work` entry points are used: the plain ones scan every input for NaN first
// (three O(n²) passes per factor and condition estimate, 2 % of a RegMean merge), and the
// input's finiteness is checked here once.

import CBLAS

public struct CholeskyFactor: Sendable {
    /// Row-major n×n; the upper triangle holds U with A = UᵀU (the lower triangle is stale).
    public let factor: Tensor<Double>
    /// 1-norm of the original matrix, kept for the condition estimate.
    public let oneNorm: Double
    public var size: Int { factor.rows }

    /// Factors `a` (n×n, symmetric; only its upper triangle is read).
    public init(_ a: Tensor<Double>) throws {
        guard a.rank == 2, a.shape[0] == a.shape[1] else { throw LinAlgError.notSquare(operation: "Cholesky", shape: a.shape) }
        guard a.isFinite else { throw LinAlgError.nonFinite(operation: "Cholesky") }
        let n = a.shape[0]
        var f = a
        var norm = 0.0
        var info: Int32 = 0
        if n > 0 {
            var work = [Double](repeating: 0, count: n)
            f.withUnsafeMutableBufferPointer { p in
                norm = LAPACKE_dlansy_work(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "1")), CChar(UInt8(ascii: "L")),
                                           Int32(n), p.baseAddress, Int32(n), &work)
                info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), p.baseAddress, Int32(n))
            }
        }
        if info > 0 { throw LinAlgError.notPositiveDefinite(minor: Int(info), size: n) }
        if info < 0 { throw LinAlgError.lapackFailure(routine: "dpotrf", info: Int(info)) }
        self.factor = f
        self.oneNorm = norm
    }

    /// Solves A X = B for B (n×m, or a vector of n); returns X with B's shape.
    public func solve(_ b: Tensor<Double>) throws -> Tensor<Double> {
        let n = size
        guard b.rows == n else { throw LinAlgError.shapeMismatch(operation: "Cholesky solve", lhs: factor.shape, rhs: b.shape) }
        let nrhs = b.rank == 1 ? 1 : b.cols
        var x = b
        x.withUnsafeMutableBufferPointer { px in
            if let base = px.baseAddress { solveInPlace(left: base, columns: nrhs) }
        }
        return x
    }

    /// X ← A⁻¹ X in place, X (n × columns) row-major: Uᵀ Y = X, then U X = Y.
    public func solveInPlace(left x: UnsafeMutablePointer<Double>, columns: Int) {
        multiply(.left, x, count: columns, transposed: true, inverse: true)
        multiply(.left, x, count: columns, transposed: false, inverse: true)
    }

    /// X ← X A⁻¹ in place, X (rows × n) row-major: A⁻¹ = U⁻¹U⁻ᵀ, so Y U = X, then X Uᵀ = Y.
    public func solveInPlace(right x: UnsafeMutablePointer<Double>, rows: Int) {
        multiply(.right, x, count: rows, transposed: false, inverse: true)
        multiply(.right, x, count: rows, transposed: true, inverse: true)
    }

    /// X ← op(U) X (`.left`; X is n × count) or X op(U) (`.right`; X is count × n) in place,
    /// X row-major, op(U) one of U, Uᵀ, U⁻¹, U⁻ᵀ.
    public func multiply(_ side: BLAS.Side, _ x: UnsafeMutablePointer<Double>, count: Int, transposed: Bool, inverse: Bool) {
        guard size > 0, count > 0 else { return }
        factor.withUnsafeBufferPointer { pf in
            BLAS.triangular(side, u: pf.baseAddress!, n: size, x: x, count: count, transposed: transposed, inverse: inverse)
        }
    }

    /// U⁻ᵀ M U⁻¹ for M (n×n, symmetric; only its upper triangle is read), A = UᵀU: the
    /// congruence that whitens M by A. LAPACK dsygst (itype 1), which uses M's symmetry — half
    /// the work of two triangular solves. Returns the full symmetric matrix.
    public func congruence(_ m: Tensor<Double>) throws -> Tensor<Double> {
        let n = size
        guard m.shape == [n, n] else { throw LinAlgError.shapeMismatch(operation: "congruence", lhs: factor.shape, rhs: m.shape) }
        guard n > 0 else { return m }
        var out = m
        // Row-major upper = column-major lower, for M and for U (= Lᵀ with A = LLᵀ): dsygst
        // with uplo 'L' computes L⁻¹ M L⁻ᵀ = U⁻ᵀ M U⁻¹ into that triangle.
        let info = out.withUnsafeMutableBufferPointer { po in
            factor.withUnsafeBufferPointer { pf in
                LAPACKE_dsygst_work(LAPACK_COL_MAJOR, 1, CChar(UInt8(ascii: "L")), Int32(n), po.baseAddress, Int32(n),
                                    pf.baseAddress, Int32(n))
            }
        }
        if info != 0 { throw LinAlgError.lapackFailure(routine: "dsygst", info: Int(info)) }
        out.withUnsafeMutableBufferPointer { BLAS.symmetrizeUpper(n: n, c: $0.baseAddress!, ldc: n) }
        return out
    }

    /// The factor of A + jitter·I with the smallest jitter in 0, 1e-10, 1e-8, … 1e-2 times A's
    /// mean diagonal (1 if that is not positive) that factors, for a preconditioner that must
    /// exist even when A is singular (a rank-deficient K-FAC factor); nil if none does.
    public static func damped(_ a: Tensor<Double>) -> CholeskyFactor? {
        if let f = try? CholeskyFactor(a) { return f }
        return jittered(a, from: 1e-10, growth: 100, tries: 5) { _ in true }?.factor
    }

    /// The first factor of A + jitter·I that factors and that `accept` takes, trying jitter =
    /// A's mean diagonal (1 if that is not positive) × `from` × `growth`^k for k < `tries`; with
    /// the jitter used. The one jitter ladder behind `damped` and `solveSymmetric`.
    public static func jittered(_ a: Tensor<Double>, from: Double, growth: Double, tries: Int,
                                accept: (CholeskyFactor) -> Bool) -> (factor: CholeskyFactor, jitter: Double)? {
        let n = a.rows
        let meanDiagonal = a.meanDiagonal > 0 ? a.meanDiagonal : 1
        var relative = from
        for _ in 0..<max(tries, 0) {
            let jitter = meanDiagonal * relative
            var shifted = a
            for i in 0..<n { shifted[i, i] += jitter }
            if let f = try? CholeskyFactor(shifted), accept(f) { return (f, jitter) }
            relative *= growth
        }
        return nil
    }

    /// Reciprocal condition number in the 1-norm (LAPACK dpocon): 1 / (‖A‖₁ ‖A⁻¹‖₁), estimated.
    public func reciprocalCondition() -> Double {
        let n = size
        guard n > 0 else { return 1 }
        var rcond = 0.0
        var work = [Double](repeating: 0, count: 3 * n)
        var iwork = [Int32](repeating: 0, count: n)
        let info = factor.withUnsafeBufferPointer { pf in
            LAPACKE_dpocon_work(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), pf.baseAddress, Int32(n), oneNorm, &rcond,
                                &work, &iwork)
        }
        return info == 0 ? rcond : 0
    }
}
