// SymmetricAccumulator: a d×d fp64 running sum fed by fp32 syrk products — each batch's
// Σ x xᵀ (or Σ w·g gᵀ) is formed in Float by BLAS and added into Double, so sums over
// millions of rows do not lose the small ones (DESIGN.md §2: numerics that decide results in Double).

import LinAlg

final class SymmetricAccumulator {
    let dim: Int
    private(set) var rows = 0
    private let sum: UnsafeMutablePointer<Double>    // d×d, upper triangle maintained
    private let scratch: UnsafeMutablePointer<Float> // d×d, one batch's product

    init(dim: Int) {
        self.dim = dim
        sum = .allocate(capacity: dim * dim)
        sum.initialize(repeating: 0, count: dim * dim)
        scratch = .allocate(capacity: dim * dim)
        scratch.initialize(repeating: 0, count: dim * dim)
    }

    deinit {
        sum.deallocate()
        scratch.deallocate()
    }

    /// sum += α · XᵀX for X (count × dim), row stride dim. Rows are counted separately
    /// (`addRows`) because one example may be fed several times with expectation weights.
    func add(_ x: UnsafePointer<Float>, count: Int, alpha: Float = 1) {
        guard count > 0 else { return }
        BLAS.syrkTransposed(d: dim, rows: count, alpha: alpha, x: x, ldx: dim, beta: 0, c: scratch, ldc: dim)
        for i in 0..<dim {
            let s = sum + i * dim, f = scratch + i * dim
            for j in i..<dim { s[j] += Double(f[j]) }
        }
    }

    func addRows(_ n: Int) { rows += n }

    /// sum += other's sum, rows += other's rows (same dim).
    func add(_ other: SymmetricAccumulator) {
        precondition(other.dim == dim, "SymmetricAccumulator: adding a \(other.dim)-square sum to a \(dim)-square one")
        for i in 0..<dim {
            let s = sum + i * dim, o = other.sum + i * dim
            for j in i..<dim { s[j] += o[j] }
        }
        rows += other.rows
    }

    /// The full symmetric sum as a Float tensor (d×d).
    func tensor() -> Tensor<Float> {
        var t = Tensor<Float>(shape: [dim, dim])
        t.withUnsafeMutableBufferPointer { out in
            for i in 0..<dim {
                for j in i..<dim {
                    let v = Float(sum[i * dim + j])
                    out[i * dim + j] = v
                    out[j * dim + i] = v
                }
            }
        }
        return t
    }
}
