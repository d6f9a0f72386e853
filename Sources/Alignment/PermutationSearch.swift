// PermutationSearch: from the correlations of A's and B's units, the permutation of B that
// matches A best — per layer for the feed-forward neurons and attention (three ways of treating
// heads), and for the residual stream (five ways of choosing P) — each by linear assignment
// maximising the summed correlation of matched units.

import LinAlg
import Model

/// How attention features are matched.
public enum AttentionAlignment: String, Sendable, CaseIterable {
    /// No attention permutation (vanilla averaging of Q, K, V and W_O's inputs): the paper's
    /// baseline row.
    case vanilla
    /// One assignment over all hidden features, heads ignored (not function-preserving in general).
    case ignoreHeads = "ignore_heads"
    /// Head j to head j; an inner assignment per head.
    case monotonic
    /// An inner assignment per head pair (j, k), then heads matched by their inner totals.
    case headPerm = "head_perm"
}

/// Whether the feed-forward neurons are matched or left in place (the paper's residual-only
/// table leaves them, so only the residual stream's P differs between its rows).
public enum FeedForwardAlignment: String, Sendable, CaseIterable {
    case match
    case identity
}

/// How the residual stream's P is chosen.
public enum ResidualAlignment: String, Sendable, CaseIterable {
    /// P = identity.
    case identity
    /// One P from the correlations after the embeddings.
    case first
    /// One P from the correlations leaving the last layer.
    case last
    /// One P from the correlations summed over every residual point.
    case all
    /// A P per residual point: not function-preserving (a residual addition then adds
    /// differently permuted vectors); measured because the paper does.
    case separate
}

public enum PermutationSearch {
    /// B's permutation toward A. `correlations[point]` is corr(A unit i, B unit j) (i rows, j columns).
    public static func permutation(config: BertConfig, correlations: [AlignmentPoint: Tensor<Double>],
                                   attention: AttentionAlignment, residual: ResidualAlignment,
                                   feedForward: FeedForwardAlignment = .match) throws -> BertPermutation {
        var result = BertPermutation(identity: config)
        let (H, d) = (config.numAttentionHeads, config.headSize)
        func required(_ point: AlignmentPoint) throws -> Tensor<Double> {
            guard let c = correlations[point] else {
                throw AlignmentError.invalidPermutation(what: "\(point)", reason: "no correlations were collected there")
            }
            return c
        }
        for l in 0..<config.numHiddenLayers {
            if feedForward == .match {
                result.layers[l].feedForward = try match(required(.feedForward(l)))
            }
            // Q and K share one inner permutation per head (so QKᵀ is unchanged), from their summed
            // correlations; V gets its own from its correlations (W_O's columns follow it). Both
            // move with the same outer head permutation.
            var queryKey = try required(.query(l))
            let key = try required(.key(l))
            for i in 0..<queryKey.count { queryKey.storage[i] += key.storage[i] }
            let value = try required(.value(l))
            switch attention {
            case .vanilla:
                break
            case .ignoreHeads:
                result.layers[l].queryKey = try match(queryKey)
                result.layers[l].value = try match(value)
            case .monotonic:
                let identity = Permutation(identity: H)
                result.layers[l].queryKey = Permutation.heads(identity, inner: try (0..<H).map { try match(block(queryKey, j: $0, k: $0, size: d)) }, headSize: d)
                result.layers[l].value = Permutation.heads(identity, inner: try (0..<H).map { try match(block(value, j: $0, k: $0, size: d)) }, headSize: d)
            case .headPerm:
                // Head j of A against head k of B: inner assignments for Q/K and for V, scored
                // together; then heads matched by those scores.
                var totals = Tensor<Double>(shape: [H, H])
                var innerQK: [[Permutation]] = [], innerV: [[Permutation]] = []
                for j in 0..<H {
                    var rowQK: [Permutation] = [], rowV: [Permutation] = []
                    for k in 0..<H {
                        let bqk = block(queryKey, j: j, k: k, size: d), bv = block(value, j: j, k: k, size: d)
                        let pqk = try match(bqk), pv = try match(bv)
                        totals[j, k] = (0..<d).reduce(0) { $0 + bqk[$1, pqk[$1]] + bv[$1, pv[$1]] }
                        rowQK.append(pqk)
                        rowV.append(pv)
                    }
                    innerQK.append(rowQK)
                    innerV.append(rowV)
                }
                let heads = try match(totals)
                result.layers[l].queryKey = Permutation.heads(heads, inner: (0..<H).map { innerQK[$0][heads[$0]] }, headSize: d)
                result.layers[l].value = Permutation.heads(heads, inner: (0..<H).map { innerV[$0][heads[$0]] }, headSize: d)
            }
        }

        let points = 2 * config.numHiddenLayers + 1
        switch residual {
        case .identity:
            break
        case .first:
            result.setResidual(try match(required(.residual(0))))
        case .last:
            result.setResidual(try match(required(.residual(points - 1))))
        case .all:
            var sum = try required(.residual(0))
            for k in 1..<points {
                let c = try required(.residual(k))
                for i in 0..<sum.count { sum.storage[i] += c.storage[i] }
            }
            result.setResidual(try match(sum))
        case .separate:
            result.embeddings = try match(required(.residual(0)))
            for l in 0..<config.numHiddenLayers {
                result.layers[l].attentionResidual = try match(required(.residual(2 * l + 1)))
                result.layers[l].outputResidual = try match(required(.residual(2 * l + 2)))
            }
        }
        return result
    }

    /// The gather of B's units that maximises Σᵢ corr(A unit i, B unit p[i]).
    static func match(_ correlation: Tensor<Double>) throws -> Permutation {
        try Permutation(LinearAssignment.solve(correlation, .maximize), what: "assignment")
    }

    /// Rows j·d ..< (j+1)·d and columns k·d ..< (k+1)·d of c: head j of A against head k of B.
    static func block(_ c: Tensor<Double>, j: Int, k: Int, size d: Int) -> Tensor<Double> {
        var out = Tensor<Double>(shape: [d, d])
        for r in 0..<d { for s in 0..<d { out[r, s] = c[j * d + r, k * d + s] } }
        return out
    }

    /// Mean correlation of matched units at `point` after the permutation: the diagnostic the
    /// align command reports (1 for a model aligned to a permuted copy of itself).
    public static func matchedCorrelation(_ c: Tensor<Double>, _ p: Permutation) -> Double {
        (0..<p.count).reduce(0) { $0 + c[$1, p[$1]] } / Double(max(p.count, 1))
    }
}
