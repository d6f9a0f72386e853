// Conjugate gradient for A x = b with A symmetric positive definite, given only as an
// operator x ↦ A x (matrix-free), with an optional preconditioner z ↦ M⁻¹ z.

/// Writes A·x into `result`; both buffers have the system's length.
public typealias LinearOperator = (_ x: UnsafeBufferPointer<Double>, _ result: UnsafeMutableBufferPointer<Double>) -> Void

public struct ConjugateGradientResult: Sendable {
    public var x: [Double]
    public var iterations: Int
    /// ‖r_k‖₂ / ‖b‖₂ for k = 0 (the initial guess) … iterations.
    public var residualHistory: [Double]
    public var converged: Bool
    /// r = b − A x at the initial guess.
    public var startResidual: [Double]
    public var initialRelativeResidual: Double { residualHistory.first ?? 0 }
    public var finalRelativeResidual: Double { residualHistory.last ?? 0 }
}

/// Solves A x = b by (preconditioned) conjugate gradient from `initial` (default 0).
/// Stops when ‖r‖/‖b‖ ≤ `tolerance` or after `maxIterations`.
public func conjugateGradient(apply: LinearOperator, rhs b: [Double], initial: [Double]? = nil,
                              preconditioner: LinearOperator? = nil,
                              tolerance: Double = 1e-10, maxIterations: Int = 1000) -> ConjugateGradientResult {
    let n = b.count
    var x = initial ?? [Double](repeating: 0, count: n)
    precondition(x.count == n, "conjugateGradient: initial guess has \(x.count) entries, rhs has \(n)")
    var r = [Double](repeating: 0, count: n)
    var z = [Double](repeating: 0, count: n)
    var p = [Double](repeating: 0, count: n)
    var ap = [Double](repeating: 0, count: n)

    func dot(_ u: [Double], _ v: [Double]) -> Double {
        u.withUnsafeBufferPointer { pu in v.withUnsafeBufferPointer { pv in
            n == 0 ? 0 : BLAS.dot(n: n, x: pu.baseAddress!, y: pv.baseAddress!)
        } }
    }
    func applyOp(_ op: LinearOperator, _ input: [Double], into output: inout [Double]) {
        input.withUnsafeBufferPointer { pin in output.withUnsafeMutableBufferPointer { pout in op(pin, pout) } }
    }

    let bNorm = dot(b, b).squareRoot()
    let scale = bNorm > 0 ? bNorm : 1
    // r = b − A x
    applyOp(apply, x, into: &ap)
    for i in 0..<n { r[i] = b[i] - ap[i] }
    var history = [dot(r, r).squareRoot() / scale]
    if history[0] <= tolerance {
        return ConjugateGradientResult(x: x, iterations: 0, residualHistory: history, converged: true, startResidual: r)
    }
    let start = r
    if let m = preconditioner { applyOp(m, r, into: &z) } else { z = r }
    p = z
    var rz = dot(r, z)
    var iterations = 0
    var converged = false
    while iterations < maxIterations {
        applyOp(apply, p, into: &ap)
        let pAp = dot(p, ap)
        guard pAp > 0, pAp.isFinite else { break }           // A not positive definite along p
        let alpha = rz / pAp
        for i in 0..<n { x[i] += alpha * p[i]; r[i] -= alpha * ap[i] }
        iterations += 1
        let relative = dot(r, r).squareRoot() / scale
        history.append(relative)
        if relative <= tolerance { converged = true; break }
        if let m = preconditioner { applyOp(m, r, into: &z) } else { z = r }
        let rzNext = dot(r, z)
        let beta = rzNext / rz
        rz = rzNext
        for i in 0..<n { p[i] = z[i] + beta * p[i] }
    }
    return ConjugateGradientResult(x: x, iterations: iterations, residualHistory: history, converged: converged,
                                   startResidual: start)
}
