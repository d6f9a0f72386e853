// Cholesky factorisation A = UᵀU of a symmetric positive definite matrix (fp64, LAPACK
// potrf/pocon, BLAS trsm), solving for many right-hand sides at once.
//
// LAPACKE's row-major entry points transpose into a scratch copy and back. A symmetric
// matrix needs no transposition: its row-major upper triangle is, byte for byte, the
// column-major lower triangle. So every call here is column-major with uplo 'L' on
// row-major data, and the solves go through row-major BLAS trsm, which copies nothing.

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
            f.withUnsafeMutableBufferPointer { p in
                norm = LAPACKE_dlansy(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "1")), CChar(UInt8(ascii: "L")),
                                      Int32(n), p.baseAddress, Int32(n))
                info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), p.baseAddress, Int32(n))
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
        guard n > 0, nrhs > 0 else { return x }
        // A = UᵀU: solve Uᵀ Y = B, then U X = Y (row-major U is the factor's upper triangle).
        factor.withUnsafeBufferPointer { pf in
            x.withUnsafeMutableBufferPointer { px in
                cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, Int32(n), Int32(nrhs),
                            1, pf.baseAddress, Int32(n), px.baseAddress, Int32(nrhs))
                cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(n), Int32(nrhs),
                            1, pf.baseAddress, Int32(n), px.baseAddress, Int32(nrhs))
            }
        }
        return x
    }

    /// Reciprocal condition number in the 1-norm (LAPACK dpocon): 1 / (‖A‖₁ ‖A⁻¹‖₁), estimated.
    public func reciprocalCondition() -> Double {
        let n = size
        guard n > 0 else { return 1 }
        var rcond = 0.0
        let info = factor.withUnsafeBufferPointer { pf in
            LAPACKE_dpocon(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(n), pf.baseAddress, Int32(n), oneNorm, &rcond)
        }
        return info == 0 ? rcond : 0
    }
}
