// RankOneCapacity: how many copies of v vᵀ a Gram can hold. If G = Σ cᵢ vᵢvᵢᵀ with cᵢ ≥ 0,
// then G ⪰ c v vᵀ for each term, and the largest c with G − c v vᵀ ⪰ 0 is 1/(vᵀG⁺v) (v in
// G's range; 0 otherwise). So a row that occurred c times has capacity ≥ c, and a candidate of
// capacity < 1 cannot have occurred at all: a certified exclusion test. We evaluate it as
// 1/(vᵀ(G₊ + μI)⁻¹v) with G₊ the PSD part and μ = max(τ·λ_max, noise floor): μ absorbs the fp32
// rounding of the stored Gram (so true rows keep capacity ≥ their count) and, for a
// DP-noised Gram, the noise's spectral scale; a vector with a component r outside G's range gets
// capacity ≈ μ/‖r‖², the DAGER-style span test as a limit.
//
// One eigendecomposition of G, then one GEMM per batch of candidates: Y = V·U (n×d).

import LinAlg

public struct RankOneCapacity {
    public let dim: Int
    /// U (d×d, row-major, column j = eigenvector j) and the weights 1/(max(λⱼ,0) + μ).
    private let basis: [Float]
    private let weights: [Double]
    public let mu: Double
    public let largestEigenvalue: Double

    /// `relativeFloor` τ; `noiseFloor` an absolute floor for μ (σ√d of a DP-noised Gram).
    public init(gram: Tensor<Float>, relativeFloor: Double = 1e-5, noiseFloor: Double = 0) throws {
        let d = gram.shape[0]
        let eigen = try SymmetricEigen(gram.converted(to: Double.self))
        let largest = max(eigen.values.last ?? 0, 0)
        let mu = max(relativeFloor * largest, noiseFloor, Double.leastNormalMagnitude)
        dim = d
        self.mu = mu
        largestEigenvalue = largest
        basis = eigen.vectors.storage.map(Float.init)
        weights = eigen.values.map { 1 / (max($0, 0) + mu) }
    }

    /// Capacity of each row of `vectors` (count × d).
    public func capacities(_ vectors: [Float], count: Int) -> [Double] {
        let d = dim
        var y = [Float](repeating: 0, count: count * d)
        vectors.withUnsafeBufferPointer { pv in
            basis.withUnsafeBufferPointer { pu in
                y.withUnsafeMutableBufferPointer { py in
                    BLAS.gemm(transA: false, transB: false, m: count, n: d, k: d, alpha: 1, a: pv.baseAddress!, lda: d,
                              b: pu.baseAddress!, ldb: d, beta: 0, c: py.baseAddress!, ldc: d)
                }
            }
        }
        var out = [Double](repeating: 0, count: count)
        for r in 0..<count {
            var q = 0.0
            for j in 0..<d { let v = Double(y[r * d + j]); q += v * v * weights[j] }
            out[r] = q > 0 ? 1 / q : .infinity
        }
        return out
    }
}
