// RankOneNNLS: non-negative least squares of a Gram on known rank-one terms,
// min_{c ≥ 0} ‖G − Σᵢ cᵢ vᵢvᵢᵀ‖_F. In Frobenius inner products ⟨vᵢvᵢᵀ, vⱼvⱼᵀ⟩ = (vᵢᵀvⱼ)² and
// ⟨G, vᵢvᵢᵀ⟩ = vᵢᵀGvᵢ, so the problem is the m×m quadratic ½cᵀKc − bᵀc with K = (VVᵀ)∘(VVᵀ),
// b = diag(VGVᵀ), never the d²-long vectorised Gram. (The full Frobenius norm is the upper
// triangle's least squares with off-diagonal entries weighted twice: the same minimiser for an
// exact decomposition.) Solved by cyclic coordinate descent with projection to c ≥ 0, which
// needs no factorisation and keeps the gradient up to date in O(m) per coordinate.

import LinAlg

public struct RankOneNNLS {
    public let coefficients: [Double]
    /// ‖G − Σ cᵢvᵢvᵢᵀ‖_F / ‖G‖_F at the solution.
    public let relativeResidual: Double
    public let sweeps: Int

    /// `vectors` (m × d), `gram` (d × d); `start` warm-starts the coefficients (m, ≥ 0).
    public init(gram: Tensor<Float>, vectors: [Float], count m: Int, start: [Double]? = nil, maxSweeps: Int = 400, tolerance: Double = 1e-7) {
        let d = gram.shape[0]
        let v = vectors.map(Double.init)
        let g = gram.converted(to: Double.self)
        // K = (VVᵀ)∘(VVᵀ) (m×m); b = rowwise vᵢᵀGvᵢ.
        var k = [Double](repeating: 0, count: m * m)
        var gv = [Double](repeating: 0, count: m * d)
        v.withUnsafeBufferPointer { pv in
            k.withUnsafeMutableBufferPointer { pk in
                BLAS.gemm(transA: false, transB: true, m: m, n: m, k: d, alpha: 1, a: pv.baseAddress!, lda: d,
                          b: pv.baseAddress!, ldb: d, beta: 0, c: pk.baseAddress!, ldc: m)
            }
            g.withUnsafeBufferPointer { pg in
                gv.withUnsafeMutableBufferPointer { po in
                    BLAS.gemm(transA: false, transB: false, m: m, n: d, k: d, alpha: 1, a: pv.baseAddress!, lda: d,
                              b: pg.baseAddress!, ldb: d, beta: 0, c: po.baseAddress!, ldc: d)
                }
            }
        }
        for i in 0..<(m * m) { k[i] *= k[i] }
        var b = [Double](repeating: 0, count: m)
        for i in 0..<m { var s = 0.0; for j in 0..<d { s += gv[i * d + j] * v[i * d + j] }; b[i] = s }
        var gg = 0.0
        for x in g.storage { gg += x * x }

        var c = start ?? [Double](repeating: 0, count: m)
        var gradient = b.map { -$0 }                       // Kc − b
        for i in 0..<m where c[i] != 0 {
            k.withUnsafeBufferPointer { pk in BLAS.axpy(n: m, alpha: c[i], x: pk.baseAddress! + i * m, y: &gradient) }
        }
        var sweep = 0
        while sweep < maxSweeps {
            sweep += 1
            var largest = 0.0, scale = 0.0
            for i in 0..<m where k[i * m + i] > 0 {
                let next = max(0, c[i] - gradient[i] / k[i * m + i])
                let delta = next - c[i]
                if delta != 0 {
                    c[i] = next
                    k.withUnsafeBufferPointer { pk in BLAS.axpy(n: m, alpha: delta, x: pk.baseAddress! + i * m, y: &gradient) }
                    largest = max(largest, abs(delta))
                }
                scale = max(scale, c[i])
            }
            if largest <= tolerance * max(scale, 1) { break }
        }
        // ‖G − Σcvvᵀ‖² = ‖G‖² − 2bᵀc + cᵀKc = ‖G‖² + cᵀ(gradient − b) (gradient = Kc − b).
        var squared = gg
        for i in 0..<m { squared += c[i] * (gradient[i] - b[i]) }
        coefficients = c
        relativeResidual = gg > 0 ? max(squared, 0).squareRoot() / gg.squareRoot() : 0
        sweeps = sweep
    }
}
