// FixedPointScale: the int64 fixed point one summed tensor travels in. Each agent reports a
// bound B_i ≥ max|x| for the tensor (rounded up to a power of two, so the report leaks only
// an exponent); with B = max_i B_i over the K agents, the round fixes the largest f with
//     K · (B · 2^f + 1) ≤ 2^62,
// so every encoded term satisfies |q_i| ≤ B·2^f + ½ and the true sum |Σ q_i| stays below
// 2^62: it can never wrap mod 2^64, and the spare bit lets decoding tell a sum that kept a
// mask (uniform over 2^64, so beyond ±2^62 with probability ½ per word) from a real one.
// Encoding refuses |x| > B_i; rounding to nearest costs ≤ 2^-(f+1) per term, K·2^-(f+1)
// on the sum. One scale per tensor (not one per round): weights (~0.1) and Grams (~10³)
// would otherwise share the exponent of the largest and lose up to ~14 bits.

public struct FixedPointScale: Sendable, Equatable {
    /// f: values travel as round(x · 2^f).
    public let fractionBits: Int
    /// B: the largest bound any agent reported for this tensor.
    public let bound: Double
    /// K: how many agents' terms the sum may hold.
    public let agents: Int

    /// Largest |decoded sum| the scale allows: K · (B·2^f + 1), below 2^62.
    public var sumLimit: Int64 { Int64((Double(agents) * (bound * Self.power(fractionBits) + 1)).rounded(.up)) }

    /// Sums stay below ±2^headroomBits.
    public static let headroomBits = 62
    /// f is capped here (a tensor of zeros would otherwise ask for an unbounded f).
    public static let maxFractionBits = 96

    /// The round's choice for one tensor from the K agents' reported bounds.
    public init(tensor: String, reportedBounds bounds: [Double]) throws {
        let agents = bounds.count
        guard agents > 0 else { throw SecureSumError.unusableBound(tensor: tensor, bound: .nan, agents: 0) }
        for b in bounds where !(b.isFinite && b >= 0) { throw SecureSumError.unusableBound(tensor: tensor, bound: b, agents: agents) }
        let bound = bounds.max()!
        let limit = Self.power(Self.headroomBits)
        var f = Self.maxFractionBits
        while f >= 0, Double(agents) * (bound * Self.power(f) + 1) > limit { f -= 1 }
        guard f >= 0 else { throw SecureSumError.unusableBound(tensor: tensor, bound: bound, agents: agents) }
        self.init(fractionBits: f, bound: bound, agents: agents)
    }

    /// A scale as the round announced it (agents re-check it with `isSafe`).
    public init(fractionBits: Int, bound: Double, agents: Int) {
        self.fractionBits = fractionBits
        self.bound = bound
        self.agents = agents
    }

    /// True when this scale keeps K terms of |x| ≤ `bound` below 2^62: what an agent checks
    /// before trusting a scale the aggregator sent.
    public var isSafe: Bool {
        agents > 0 && bound.isFinite && bound >= 0 && (0...Self.maxFractionBits).contains(fractionBits)
            && Double(agents) * (bound * Self.power(fractionBits) + 1) <= Self.power(Self.headroomBits)
    }

    /// What an agent reports for `values`: the smallest power of two ≥ max|x| (0 for all
    /// zeros). Refuses NaN and infinities, naming the entry.
    public static func reportedBound<C: Collection>(for values: C, tensor: String) throws -> Double where C.Element: BinaryFloatingPoint {
        var largest = 0.0
        for (i, v) in values.enumerated() {
            let x = Double(v)
            guard x.isFinite else { throw SecureSumError.nonFinite(tensor: tensor, index: i) }
            largest = max(largest, abs(x))
        }
        guard largest > 0 else { return 0 }
        let up = power(Int(largest.exponent))
        return up >= largest ? up : up * 2
    }

    /// round(x · 2^f) as two's-complement words. `ownBound` is what this agent reported;
    /// a value beyond it is refused, never wrapped.
    public func encode<C: Collection>(_ values: C, ownBound: Double, tensor: String) throws -> [UInt64] where C.Element: BinaryFloatingPoint {
        guard isSafe else { throw SecureSumError.unusableBound(tensor: tensor, bound: bound, agents: agents) }
        guard ownBound <= bound, ownBound >= 0 else { throw SecureSumError.unusableBound(tensor: tensor, bound: ownBound, agents: agents) }
        let scale = Self.power(fractionBits)
        var words: [UInt64] = []
        words.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            let x = Double(v)
            guard x.isFinite else { throw SecureSumError.nonFinite(tensor: tensor, index: i) }
            guard abs(x) <= ownBound else { throw SecureSumError.valueBeyondBound(tensor: tensor, index: i, value: x, bound: ownBound) }
            words.append(UInt64(bitPattern: Int64((x * scale).rounded())))
        }
        return words
    }

    /// Σ q_i (the unmasked sum, mod 2^64) back to reals; a word beyond ±sumLimit is refused.
    public func decode(sum words: [UInt64], tensor: String) throws -> [Double] {
        let limit = sumLimit
        let inverse = 1 / Self.power(fractionBits)
        return try words.enumerated().map { i, word in
            let q = Int64(bitPattern: word)
            guard q.magnitude <= limit.magnitude else { throw SecureSumError.sumOutOfRange(tensor: tensor, index: i, value: q, limit: limit) }
            return Double(q) * inverse
        }
    }

    /// 2^e, exactly.
    public static func power(_ e: Int) -> Double { Double(sign: .plus, exponent: e, significand: 1) }
}
