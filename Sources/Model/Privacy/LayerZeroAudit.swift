// LayerZeroAudit: what an attacker holding the model recovers from layer 0's query Gram alone.
// G₀ = Σ count(w, t) v(w, t)v(w, t)ᵀ over the agent's tokens (LayerZeroVectors), so:
//   1. screen: the capacity of every (w, t), w over the whole vocabulary and t < positions
//      (RankOneCapacity: one GEMM per position); a pair of capacity < `minCapacity` is excluded
//      (for an exact Gram, capacity < 1 proves the pair never occurred);
//   2. solve: non-negative least squares of G₀ on the `maxCandidates` surviving pairs of
//      highest capacity (RankOneNNLS) gives token × position counts; a token's count is the
//      sum over positions.
// Why not OMP over all V·T candidates: each greedy step would re-score ~2M candidates against
// the residual (one GEMM per position per step); the capacity screen does that once, and it is
// a certified bound rather than a correlation heuristic.

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
    public var solvedWith: Int
    public var relativeResidual: Double
    public var sweeps: Int
    public var mu: Double
}

public enum LayerZeroAudit {
    public static func recover(gram: Tensor<Float>, vectors: LayerZeroVectors, positions: Int, noiseFloor: Double = 0,
                               minCapacity: Double = 0.5, maxCandidates: Int = 3000) throws -> LayerZeroRecovery {
        let capacity = try RankOneCapacity(gram: gram, noiseFloor: noiseFloor)
        let V = vectors.vocabularySize
        let T = min(positions, vectors.maxPositions)
        var survivors: [(capacity: Float, token: Int32, position: Int16)] = []
        var bestCapacity = [Double](repeating: 0, count: V)
        for t in 0..<T {
            let rows = vectors.allTokens(position: t)
            let caps = capacity.capacities(rows, count: V)
            for w in 0..<V {
                bestCapacity[w] = max(bestCapacity[w], caps[w])
                if caps[w] >= minCapacity { survivors.append((Float(min(caps[w], 1e30)), Int32(w), Int16(t))) }
            }
        }
        survivors.sort { $0.capacity > $1.capacity }
        let chosen = Array(survivors.prefix(maxCandidates))
        // The chosen pairs' vectors, grouped by position.
        var rows: [Float] = []
        var order: [(token: Int32, position: Int)] = []
        for (t, group) in Dictionary(grouping: chosen, by: { Int($0.position) }).sorted(by: { $0.key < $1.key }) {
            let ids = group.map(\.token)
            rows += vectors.vectors(ids: ids, position: t)
            order += ids.map { ($0, t) }
        }
        var pairs: [LayerZeroRecovery.Pair] = []
        var tokenCounts: [Int32: Double] = [:]
        var residual = 1.0, sweeps = 0
        if !order.isEmpty {
            let nnls = RankOneNNLS(gram: gram, vectors: rows, count: order.count)
            residual = nnls.relativeResidual
            sweeps = nnls.sweeps
            for (i, c) in nnls.coefficients.enumerated() where c >= 0.05 {
                pairs.append(.init(token: order[i].token, position: order[i].position, count: c))
                tokenCounts[order[i].token, default: 0] += c
            }
        }
        pairs.sort { $0.count > $1.count }
        let ranking = (0..<Int32(V)).sorted { a, b in
            let ca = tokenCounts[a] ?? 0, cb = tokenCounts[b] ?? 0
            return ca != cb ? ca > cb : bestCapacity[Int(a)] > bestCapacity[Int(b)]
        }
        return LayerZeroRecovery(pairs: pairs, tokenCounts: tokenCounts, ranking: ranking, screened: V * T,
                                 survivors: survivors.count, solvedWith: order.count, relativeResidual: residual,
                                 sweeps: sweeps, mu: capacity.mu)
    }
}
