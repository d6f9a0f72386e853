// Symmetric eigendecomposition A = V diag(λ) Vᵀ (fp64, LAPACK syevd).

import CBLAS

public struct SymmetricEigen: Sendable {
    /// Eigenvalues in ascending order.
    public let values: [Double]
    /// Row-major n×n; column j is the unit eigenvector for `values[j]`.
    public let vectors: Tensor<Double>

    /// Decomposes `a` (n×n, symmetric; only the upper triangle is read).
    public init(_ a: Tensor<Double>) throws {
        guard a.rank == 2, a.shape[0] == a.shape[1] else { throw LinAlgError.notSquare(operation: "syevd", shape: a.shape) }
        guard a.isFinite else { throw LinAlgError.nonFinite(operation: "syevd") }
        let n = a.shape[0]
        var v = a
        var w = [Double](repeating: 0, count: n)
        if n > 0 {
            let info = v.withUnsafeMutableBufferPointer { pv in
                w.withUnsafeMutableBufferPointer { pw in
                    LAPACKE_dsyevd(LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")),
                                   Int32(n), pv.baseAddress, Int32(n), pw.baseAddress)
                }
            }
            if info != 0 { throw LinAlgError.lapackFailure(routine: "dsyevd", info: Int(info)) }
        }
        self.values = w
        self.vectors = v
    }
}
