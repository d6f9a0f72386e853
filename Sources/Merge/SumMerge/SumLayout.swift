// SumLayout: what one agent contributes to a merge run on sums (secure summation) — the
// model's tensor names and shapes, and the list of summands (which tensor, which product,
// how many fp64 entries) in the order they are masked and uploaded. Every agent of a merge
// must produce the same layout; the aggregator sums summand k over agents and merges.

import LinAlg

/// What a summand holds for agent i (w = merge weight, s = w or w/num_rows under gram_normalize: mean).
public enum SummandRole: String, Sendable, Codable, CaseIterable {
    /// w θ (every averaged tensor; Fisher's fallback; a per_label head's plain average).
    case weighted
    /// s G, the Gram of a linear as its upper triangle (d(d+1)/2), once per stored Gram.
    case gram
    /// s G Wᵀ (in×out) of a linear W (out×in).
    case gramTimesWeight
    /// s diag(G) Wᵀ (in×out): with the above, Σ G̃ᵢWᵢᵀ for any α.
    case diagTimesWeight
    /// w F (diagonal Fisher, the tensor's shape).
    case fisher
    /// w F θ.
    case fisherTimesWeight
    /// w θ on the rows of labels the agent's data had, 0 on the others (heads: per_label).
    case labelRows
    /// w per row for labels the agent's data had, 0 for the others (rows entries).
    case labelRowWeights
}

public struct SummandSpec: Sendable, Equatable, Codable {
    /// The tensor the summand belongs to; for `.gram`, the linear the Gram is stored under.
    public var tensor: String
    public var role: SummandRole
    /// fp64 entries (what is fixed-point encoded and masked).
    public var count: Int
    /// For `.gramTimesWeight` / `.diagTimesWeight`: the linear whose `.gram` summand is this weight's Gram.
    public var gram: String?

    public init(tensor: String, role: SummandRole, count: Int, gram: String? = nil) {
        self.tensor = tensor; self.role = role; self.count = count; self.gram = gram
    }

    /// A unique name within a layout ("<tensor>#<role>").
    public var key: String { tensor + "#" + role.rawValue }
}

public struct TensorSlot: Sendable, Equatable, Codable {
    public var name: String
    /// A head kept per agent (heads: keep) has 0 rows here: every agent's own has its label count.
    public var shape: [Int]
}

public struct SumLayout: Sendable, Equatable, Codable {
    public var method: String
    /// The model's tensors in its order (the merged model keeps it).
    public var tensors: [TensorSlot]
    public var summands: [SummandSpec]
}

/// One agent's contribution: its layout, the summands' values (aligned with
/// `layout.summands`) and, under heads: keep, its own head tensors, which are per agent
/// and so travel in the clear.
public struct AgentSummands: Sendable {
    public var layout: SumLayout
    public var values: [[Double]]
    public var keptHeads: NamedTensors
}
