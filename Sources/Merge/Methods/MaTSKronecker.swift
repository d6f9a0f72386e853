// MaTS's K-FAC system Σᵢ Bᵢ X Aᵢ = C, solved by CG in whitened coordinates with an fp32
// operator.
//
// The Kronecker preconditioner B̄ ⊗ Ā (B̄ = Ub ᵀUb, Ā = UaᵀUa, Cholesky) is applied once, to
// the system, instead of at every iteration: with X = Ub⁻¹ X̃ Ua⁻ᵀ the system becomes
//     Σᵢ B̃ᵢ X̃ Ãᵢ = C̃,   B̃ᵢ = Ub⁻ᵀ Bᵢ Ub⁻¹,  Ãᵢ = Ua⁻ᵀ Aᵢ Ua⁻¹,  C̃ = Ub⁻ᵀ C Ua⁻¹,
// and plain CG on it takes, in exact arithmetic, the very iterates preconditioned CG takes on
// the original (M = LLᵀ ⇒ PCG on A ≡ CG on L⁻¹AL⁻ᵀ). An iteration is then the operator alone —
// two GEMMs per model — where it was those plus four triangular solves; the transformed
// factors are symmetric and bounded (the preconditioner's floor bounds Ā⁻¹ and B̄⁻¹), so the
// GEMMs run in fp32 while CG's vectors, dot products and updates stay fp64. (Jacobi on top,
// dividing by the whitened operator's diagonal Σᵢ diag(B̃ᵢ) diag(Ãᵢ)ᵀ, was tried and left
// larger residuals on 4 MiniLM-L6s at every iteration count.)
//
// Residuals reported are in the original coordinates, r = Ubᵀ r̃ Ua; `tolerance` stops CG on
// the whitened residual ‖r̃‖/‖C̃‖.

import LinAlg

struct WhitenedKroneckerSystem {
    let rows: Int, cols: Int
    /// Per model: Ãᵢ (cols×cols) and B̃ᵢ (rows×rows), fp32.
    private let pairs: [(a: [Float], b: [Float])]
    private let left: CholeskyFactor    // Ub, B̄ = UbᵀUb (rows×rows)
    private let right: CholeskyFactor   // Ua, Ā = UaᵀUa (cols×cols)

    /// nil when the Kronecker product nearest the operator cannot be factored.
    init?(pairs original: [(a: Tensor<Double>, b: Tensor<Double>)], rows m: Int, cols n: Int) {
        guard let (fa, fb) = MaTSAccumulator.kroneckerFactors(original) else { return nil }
        rows = m; cols = n; left = fb; right = fa
        pairs = original.map { p in (a: Self.congruence(p.a, fa), b: Self.congruence(p.b, fb)) }
    }

    /// U⁻ᵀ M U⁻¹ (M n×n symmetric, A = UᵀU), computed in fp64 (LAPACK dsygst), then rounded
    /// to fp32. In fp32 throughout, the rounding, amplified by U⁻¹, made the transformed
    /// operator indefinite along near-null directions and CG diverged on one of a MiniLM's 38
    /// systems (weights 100× too large).
    private static func congruence(_ m: Tensor<Double>, _ u: CholeskyFactor) -> [Float] {
        try! u.congruence(m).storage.map(Float.init)     // square by construction, as u's factor
    }

    /// X̃ = Ub X Uaᵀ (to whitened coordinates).
    func whiten(_ x: [Double]) -> [Double] {
        transform(x, leftTransposed: false, rightTransposed: true, inverse: false)
    }
    /// X = Ub⁻¹ X̃ Ua⁻ᵀ (back from whitened coordinates).
    func unwhiten(_ x: [Double]) -> [Double] {
        transform(x, leftTransposed: false, rightTransposed: true, inverse: true)
    }
    /// C̃ = Ub⁻ᵀ C Ua⁻¹: a right-hand side or residual into whitened coordinates.
    func whitenResidual(_ r: [Double]) -> [Double] {
        transform(r, leftTransposed: true, rightTransposed: false, inverse: true)
    }
    /// r = Ubᵀ r̃ Ua: a whitened residual back to the original coordinates.
    func unwhitenResidual(_ r: [Double]) -> [Double] {
        transform(r, leftTransposed: true, rightTransposed: false, inverse: false)
    }

    private func transform(_ x: [Double], leftTransposed: Bool, rightTransposed: Bool, inverse: Bool) -> [Double] {
        var y = x
        y.withUnsafeMutableBufferPointer { p in
            left.multiply(.left, p.baseAddress!, count: cols, transposed: leftTransposed, inverse: inverse)
            right.multiply(.right, p.baseAddress!, count: rows, transposed: rightTransposed, inverse: inverse)
        }
        return y
    }

    /// Y = Σᵢ B̃ᵢ X Ãᵢ: fp32 GEMMs, accumulated over the models in fp32, widened into `y`.
    func makeOperator() -> LinearOperator {
        let (m, n) = (rows, cols)
        var xf = [Float](repeating: 0, count: m * n)
        var t = [Float](repeating: 0, count: m * n)
        var yf = [Float](repeating: 0, count: m * n)
        let pairs = self.pairs
        return { x, y in
            for i in 0..<(m * n) { xf[i] = Float(x[i]) }
            xf.withUnsafeBufferPointer { px in t.withUnsafeMutableBufferPointer { pt in yf.withUnsafeMutableBufferPointer { py in
                for (k, (a, b)) in pairs.enumerated() {
                    a.withUnsafeBufferPointer { pa in
                        BLAS.gemm(m: m, n: n, k: n, alpha: 1, a: px.baseAddress!, lda: n, b: pa.baseAddress!, ldb: n,
                                  beta: 0, c: pt.baseAddress!, ldc: n)
                    }
                    b.withUnsafeBufferPointer { pb in
                        BLAS.gemm(m: m, n: n, k: m, alpha: 1, a: pb.baseAddress!, lda: m, b: UnsafePointer(pt.baseAddress!), ldb: n,
                                  beta: k == 0 ? 0 : 1, c: py.baseAddress!, ldc: n)
                    }
                }
            } } }
            for i in 0..<(m * n) { y[i] = Double(yf[i]) }
        }
    }

    /// CG from `initial` (original coordinates) on the whitened system with right-hand side
    /// `rhs` (original coordinates). x comes back in the original coordinates, with the
    /// relative residuals ‖C − Σ Bᵢ X Aᵢ‖/‖C‖ it started and ended at; the CG result's own
    /// history is the whitened one.
    func solve(rhs: [Double], initial: [Double], iterations: Int, tolerance: Double) -> MaTSAccumulator.Solution {
        let apply = makeOperator()
        let b = whitenResidual(rhs)
        let x0 = whiten(initial)
        var cg = conjugateGradient(apply: apply, rhs: b, initial: x0,
                                   tolerance: tolerance, maxIterations: iterations)
        // Report residuals in the original coordinates: ‖Ubᵀ r̃ Ua‖ / ‖C‖. The end one is
        // recomputed: CG's recurrence, fed fp32 products, drifts below what x achieves.
        let bNorm = norm(rhs)
        let scale = bNorm > 0 ? bNorm : 1
        var ax = [Double](repeating: 0, count: b.count)
        cg.x.withUnsafeBufferPointer { px in ax.withUnsafeMutableBufferPointer { apply(px, $0) } }
        let first = norm(unwhitenResidual(cg.startResidual)) / scale
        let last = norm(unwhitenResidual(zip(b, ax).map { $0 - $1 })) / scale
        cg.x = unwhiten(cg.x)
        return MaTSAccumulator.Solution(cg: cg, initialResidual: first, finalResidual: last)
    }

    private func norm(_ v: [Double]) -> Double {
        v.withUnsafeBufferPointer { p in p.isEmpty ? 0 : BLAS.dot(n: p.count, x: p.baseAddress!, y: p.baseAddress!).squareRoot() }
    }
}
