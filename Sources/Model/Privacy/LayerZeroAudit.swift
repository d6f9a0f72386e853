// LayerZeroAudit: what an attacker holding the model recovers from layer 0's query Gram alone.
// G₀ = Σ count(w, t) v(w, t)v(w, t)ᵀ over the agent's tokens (LayerZeroVectors), so the counts
// solve a non-negative least squares problem whose columns are the rank-one terms of every
// (w, t), w over the whole vocabulary and t < positions (≈ 30k × 64 ≈ 2M columns):
//   1. screen: the capacity of every (w, t) (RankOneCapacity: one GEMM per position). A pair of
//      capacity < `minCapacity` is excluded; for an exact Gram, capacity < 1 proves the pair never
//      occurred. When the agent has fewer distinct pairs than the width d this alone isolates them
//      (the DAGER-style span test); a real agent's Gram is full rank and nothing is excluded.
//   2. solve NNLS over all surviving columns by column generation: with R = G − Σ cᵢvᵢvᵢᵀ the
//      residual, the objective's gradient for a column is −vᵀRv, so one GEMM per position scores
//      every column; the `batch` columns of largest vᵀRv/‖v‖² join the active set, NNLS is solved
//      on it (RankOneNNLS, warm-started) and zero coefficients leave. When no column has vᵀRv > 0
//      the KKT conditions hold: the active set's solution is the NNLS solution over all columns.
// Why not plain OMP: it adds one column per step and re-scores 2M columns each time; adding a
// batch per scoring pass reaches the same fixed point in tens of passes instead of thousands.

import LinAlg

public struct LayerZeroRecovery: Sendable, Codable {
    public struct Pair: Sendable, Codable, Equatable {
        public var token: Int32
        public var position: Int
        public var count: Double
    }
    /// Recovered (w, t) with count ≥ 0.05, largest first.
    public var pairs: [Pair]
    /// Recovered count per token (summed over positions).
    public var tokenCounts: [Int32: Double]
    /// Every token, most likely present first: by recovered count, then by best capacity.
    public var ranking: [Int32]
    public var screened: Int
    public var survivors: Int
    /// Columns in the final active set.
    public var solvedWith: Int
    public var rounds: Int
    /// True when no column could still lower the objective (the NNLS optimum over all columns).
    public var converged: Bool
    public var relativeResidual: Double
    public var mu: Double
}

public enum LayerZeroAudit {
    public static func recover(gram: Tensor<Float>, vectors: LayerZeroVectors, positions: Int, noiseFloor: Double = 0,
                               minCapacity: Double = 0.5, batch: Int = 1500, maxRounds: Int = 30) throws -> LayerZeroRecovery {
        let d = vectors.dim
        let capacity = try RankOneCapacity(gram: gram, noiseFloor: noiseFloor)
        let V = vectors.vocabularySize
        let T = min(positions, vectors.maxPositions)
        var eligible = [Bool](repeating: false, count: V * T)
        var bestCapacity = [Double](repeating: 0, count: V)
        for t in 0..<T {
            let caps = capacity.capacities(vectors.allTokens(position: t), count: V)
            for w in 0..<V {
                bestCapacity[w] = max(bestCapacity[w], caps[w])
                eligible[t * V + w] = caps[w] >= minCapacity
            }
        }
        let survivors = eligible.filter { $0 }.count

        var gramNorm = 0.0
        for x in gram.storage { gramNorm += Double(x) * Double(x) }
        gramNorm = gramNorm.squareRoot()
        var active: [(token: Int32, position: Int)] = []
        var rows: [Float] = []                       // active columns' vectors (m × d)
        var coefficients: [Double] = []
        var inActive = Set<Int>()                    // t·V + w
        var residualNorm = gramNorm, rounds = 0, converged = false
        // One position's vectors and their product with R, reused across positions and rounds.
        let allIDs = (0..<Int32(V)).map { $0 }
        let vBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: V * d)
        let yBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: V * d)
        defer { vBuffer.deallocate(); yBuffer.deallocate() }
        while rounds < maxRounds {
            rounds += 1
            // R = G − Σ cᵢ vᵢvᵢᵀ (d×d, Float for the scoring GEMMs).
            var r = gram
            if !active.isEmpty {
                let scaled = (0..<active.count).flatMap { i in rows[(i * d)..<((i + 1) * d)].map { $0 * Float(coefficients[i].squareRoot()) } }
                scaled.withUnsafeBufferPointer { ps in
                    r.withUnsafeMutableBufferPointer { pr in
                        BLAS.syrkTransposed(d: d, rows: active.count, alpha: -1, x: ps.baseAddress!, ldx: d, beta: 1, c: pr.baseAddress!, ldc: d)
                        BLAS.symmetrizeUpper(n: d, c: pr.baseAddress!, ldc: d)
                    }
                }
            }
            // Score every eligible column not yet active by vᵀRv/‖v‖²; keep the best `batch` positive ones.
            let threshold = 1e-7 * gramNorm
            var picks: [(score: Float, index: Int)] = []
            for t in 0..<T {
                let v = vBuffer.baseAddress!, y = yBuffer.baseAddress!
                vectors.write(ids: allIDs, position: t, into: v)
                r.withUnsafeBufferPointer { pr in
                    BLAS.gemm(m: V, n: d, k: d, alpha: 1, a: v, lda: d, b: pr.baseAddress!, ldb: d, beta: 0, c: y, ldc: d)
                }
                for w in 0..<V where eligible[t * V + w] && !inActive.contains(t * V + w) {
                    var q: Float = 0, n: Float = 0
                    let vw = v + w * d, yw = y + w * d
                    for j in 0..<d { q += yw[j] * vw[j]; n += vw[j] * vw[j] }
                    let score = q / max(n, .leastNormalMagnitude)
                    if Double(score) > threshold { picks.append((score, t * V + w)) }
                }
                if picks.count > 4 * batch {
                    picks.sort { $0.score > $1.score }
                    picks.removeLast(picks.count - batch)
                }
            }
            if picks.isEmpty { converged = true; break }
            picks.sort { $0.score > $1.score }
            for p in picks.prefix(batch) {
                let t = p.index / V, w = p.index % V
                active.append((Int32(w), t))
                rows += vectors.vectors(ids: [Int32(w)], position: t)
                coefficients.append(0)
                inActive.insert(p.index)
            }
            let nnls = RankOneNNLS(gram: gram, vectors: rows, count: active.count, start: coefficients, maxSweeps: 60, tolerance: 1e-6)
            residualNorm = nnls.relativeResidual
            // Zero coefficients leave the active set (they may come back when their score turns positive).
            var keep: [Int] = []
            for i in 0..<active.count where nnls.coefficients[i] > 0 { keep.append(i) }
            inActive = Set(keep.map { active[$0].position * V + Int(active[$0].token) })
            rows = keep.flatMap { rows[($0 * d)..<(($0 + 1) * d)] }
            active = keep.map { active[$0] }
            coefficients = keep.map { nnls.coefficients[$0] }
        }

        var pairs: [LayerZeroRecovery.Pair] = []
        var tokenCounts: [Int32: Double] = [:]
        for (i, c) in coefficients.enumerated() where c >= 0.05 {
            pairs.append(.init(token: active[i].token, position: active[i].position, count: c))
            tokenCounts[active[i].token, default: 0] += c
        }
        pairs.sort { $0.count > $1.count }
        let ranking = (0..<Int32(V)).sorted { a, b in
            let ca = tokenCounts[a] ?? 0, cb = tokenCounts[b] ?? 0
            return ca != cb ? ca > cb : bestCapacity[Int(a)] > bestCapacity[Int(b)]
        }
        return LayerZeroRecovery(pairs: pairs, tokenCounts: tokenCounts, ranking: ranking, screened: V * T,
                                 survivors: survivors, solvedWith: active.count, rounds: rounds, converged: converged,
                                 relativeResidual: residualNorm, mu: capacity.mu)
    }
}
