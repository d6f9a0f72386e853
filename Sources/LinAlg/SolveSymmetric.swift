// solveSymmetric: X = A⁻¹B for symmetric A, robust to rank deficiency, by the chain
// Cholesky → Cholesky with diagonal jitter → eigen pseudo-inverse. Never forms A⁻¹.

public struct SymmetricSolution: Sendable {
    public enum Path: Sendable, Equatable, CustomStringConvertible {
        /// Plain Cholesky of A.
        case cholesky
        /// Cholesky of A + jitter·I (jitter absolute, chosen relative to the mean diagonal).
        case jitter(Double)
        /// V diag(1/λ) Vᵀ B over the eigenvalues kept (|λ| > cutoff); `rank` of them.
        case pseudoInverse(rank: Int)

        public var description: String {
            switch self {
            case .cholesky: return "cholesky"
            case .jitter(let j): return "cholesky+jitter(\(j))"
            case .pseudoInverse(let r): return "eigen-pinv(rank \(r))"
            }
        }
        /// A short machine name for reports: "cholesky" | "jitter" | "pinv".
        public var name: String {
            switch self {
            case .cholesky: return "cholesky"
            case .jitter: return "jitter"
            case .pseudoInverse: return "pinv"
            }
        }
    }

    public let x: Tensor<Double>
    public let path: Path
    /// Estimated 2-norm or 1-norm condition number of the matrix actually solved with
    /// (A, A + jitter·I, or A restricted to its kept eigenvalues).
    public let conditionEstimate: Double
}

public struct SolveSymmetricOptions: Sendable {
    /// A Cholesky whose estimated reciprocal condition falls below this is not trusted:
    /// at 1e-12 about four significant digits of fp64 survive.
    public var minReciprocalCondition: Double = 1e-12
    /// Jitter tries: jitter = meanDiagonal · initialRelativeJitter · jitterGrowth^(try−1).
    public var jitterTries: Int = 3
    public var initialRelativeJitter: Double = 1e-10
    public var jitterGrowth: Double = 100
    /// Eigenvalues with |λ| ≤ cutoff · max|λ| are treated as zero by the pseudo-inverse
    /// (nil: n · ε_machine, LAPACK's usual rank tolerance).
    public var pseudoInverseCutoff: Double? = nil

    public init() {}
}

/// Solves A X = B for symmetric A (n×n) and B (n×m or n). See the file comment for the chain.
public func solveSymmetric(_ a: Tensor<Double>, _ b: Tensor<Double>,
                           options: SolveSymmetricOptions = SolveSymmetricOptions()) throws -> SymmetricSolution {
    guard a.rank == 2, a.shape[0] == a.shape[1] else { throw LinAlgError.notSquare(operation: "solveSymmetric", shape: a.shape) }
    let n = a.shape[0]
    guard b.rows == n, b.rank <= 2 else { throw LinAlgError.shapeMismatch(operation: "solveSymmetric A·X = B", lhs: a.shape, rhs: b.shape) }
    guard a.isFinite else { throw LinAlgError.nonFinite(operation: "solveSymmetric (matrix)") }
    guard b.isFinite else { throw LinAlgError.nonFinite(operation: "solveSymmetric (right-hand side)") }

    // 1. Plain Cholesky, trusted only when well enough conditioned.
    if let factor = try? CholeskyFactor(a) {
        let rcond = factor.reciprocalCondition()
        if rcond >= options.minReciprocalCondition {
            return SymmetricSolution(x: try factor.solve(b), path: .cholesky, conditionEstimate: 1 / rcond)
        }
    }

    // 2. Diagonal jitter scaled to the mean diagonal (1 if the diagonal is not positive).
    var rcond = 0.0
    if let (factor, jitter) = CholeskyFactor.jittered(a, from: options.initialRelativeJitter, growth: options.jitterGrowth,
                                                       tries: options.jitterTries, accept: {
        rcond = $0.reciprocalCondition()
        return rcond >= options.minReciprocalCondition
    }) {
        return SymmetricSolution(x: try factor.solve(b), path: .jitter(jitter), conditionEstimate: 1 / rcond)
    }

    // 3. Eigen pseudo-inverse: X = V diag(1/λ) Vᵀ B over the kept eigenvalues.
    let eigen = try SymmetricEigen(a)
    let largest = eigen.values.map(abs).max() ?? 0
    let cutoff = (options.pseudoInverseCutoff ?? Double(n) * Double.ulpOfOne) * largest
    let kept = (0..<n).filter { abs(eigen.values[$0]) > cutoff }
    let bMatrix = b.rank == 1 ? try b.reshaped([n, 1]) : b
    var projected = try matmul(eigen.vectors, bMatrix, transposeA: true)   // Vᵀ B  (n×m)
    let m = bMatrix.cols
    let keptSet = Set(kept)
    projected.withUnsafeMutableBufferPointer { p in
        for i in 0..<n {
            let scale = keptSet.contains(i) ? 1 / eigen.values[i] : 0
            for j in 0..<m { p[i * m + j] *= scale }
        }
    }
    var x = try matmul(eigen.vectors, projected)                             // V (Λ⁺ Vᵀ B)
    if b.rank == 1 { x = try x.reshaped([n]) }
    let smallestKept = kept.map { abs(eigen.values[$0]) }.min() ?? 0
    let condition = smallestKept > 0 ? largest / smallestKept : .infinity
    return SymmetricSolution(x: x, path: .pseudoInverse(rank: kept.count), conditionEstimate: condition)
}
