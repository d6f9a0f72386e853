// PositiveSemidefinite: the nearest positive semi-definite matrix to a symmetric one in the
// Frobenius norm (Higham 1988): A = V diag(λ) Vᵀ ↦ V diag(max(λ, 0)) Vᵀ. A noisy Gram is
// projected this way by the agent before upload, so it passes the aggregator's PSD check and
// RegMean's Cholesky sees a matrix of the kind it was built for. Projection is post-processing:
// it costs no privacy.

import LinAlg

public enum PositiveSemidefinite {
    /// The projection of `a` (n×n, symmetric) and its most negative eigenvalue (0 when none).
    public static func nearest(_ a: Tensor<Double>) throws -> (matrix: Tensor<Double>, mostNegative: Double) {
        let n = a.shape[0]
        let eigen = try SymmetricEigen(a)
        let mostNegative = min(0, eigen.values.first ?? 0)
        if mostNegative == 0 { return (a, 0) }
        // X (n×n): row j = √λ₊ⱼ · vⱼ, so A₊ = XᵀX = Σⱼ λ₊ⱼ vⱼvⱼᵀ, PSD up to rounding.
        var x = Tensor<Double>(shape: [n, n])
        eigen.vectors.withUnsafeBufferPointer { pv in
            x.withUnsafeMutableBufferPointer { px in
                for j in 0..<n where eigen.values[j] > 0 {
                    let scale = eigen.values[j].squareRoot()
                    for i in 0..<n { px[j * n + i] = scale * pv[i * n + j] }
                }
            }
        }
        var out = Tensor<Double>(shape: [n, n])
        x.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { po in
                BLAS.syrkTransposed(d: n, rows: n, alpha: 1, x: px.baseAddress!, ldx: n, beta: 0, c: po.baseAddress!, ldc: n)
            }
        }
        return (symmetrized(out), mostNegative)
    }

    private static func symmetrized(_ t: Tensor<Double>) -> Tensor<Double> {
        var t = t
        let n = t.shape[0]
        t.withUnsafeMutableBufferPointer { p in BLAS.symmetrizeUpper(n: n, c: p.baseAddress!, ldc: n) }
        return t
    }
}
