// PairwiseMask: agent i's mask over n words, m_i = Σ_{j>i} PRG(s_ij) − Σ_{j<i} PRG(s_ji)
// mod 2^64, so Σ_i m_i = 0 over any set of agents that all upload; and the aggregator's
// removal of a dropped agent's pairs from the survivors' sum, given the seeds they reveal.

public enum PairwiseMask {
    /// The mask `agent` adds to summand `stream` (n = `count` words). `seeds` holds one seed per peer.
    public static func mask(for agent: String, seeds: [String: PairwiseSeed], stream: UInt64, count: Int) throws -> [UInt64] {
        var mask = [UInt64](repeating: 0, count: count)
        for (peer, seed) in seeds.sorted(by: { AgentOrder.precedes($0.key, $1.key) }) {
            guard seed.peer(of: agent) == peer else { throw SecureSumError.badReveal(survivor: agent, dropped: peer, reason: "seed of pair \(seed.lower)/\(seed.higher) filed under \(peer)") }
            let words = try MaskStream.words(seed: seed, stream: stream, count: count)
            if AgentOrder.precedes(agent, peer) {
                for k in 0..<count { mask[k] &+= words[k] }
            } else {
                for k in 0..<count { mask[k] &-= words[k] }
            }
        }
        return mask
    }

    /// y = fixed + mask (mod 2^64): what an agent uploads.
    public static func apply(_ mask: [UInt64], to fixed: [UInt64]) throws -> [UInt64] {
        guard mask.count == fixed.count else { throw SecureSumError.lengthMismatch(what: "mask", expected: fixed.count, actual: mask.count) }
        return zip(fixed, mask).map { $0 &+ $1 }
    }

    /// Σ of uploads (mod 2^64), elementwise.
    public static func sum(_ uploads: [[UInt64]]) throws -> [UInt64] {
        guard let first = uploads.first else { return [] }
        var total = first
        for (i, u) in uploads.enumerated().dropFirst() {
            guard u.count == total.count else { throw SecureSumError.lengthMismatch(what: "upload \(i)", expected: total.count, actual: u.count) }
            for k in 0..<u.count { total[k] &+= u[k] }
        }
        return total
    }

    /// Removes from `sum` (the survivors' uploads added up) the mask terms each survivor
    /// shares with `dropped`, which no upload of `dropped` will cancel. `revealed[s]` is the
    /// seed survivor s shares with `dropped`. Survivor i added +PRG(s_id) if i precedes
    /// `dropped`, −PRG(s_id) otherwise; this does the opposite.
    public static func removeDropped(_ dropped: String, from sum: inout [UInt64], survivors: [String],
                                     revealed: [String: PairwiseSeed], stream: UInt64) throws {
        for survivor in survivors {
            guard survivor != dropped else { throw SecureSumError.badReveal(survivor: survivor, dropped: dropped, reason: "an agent cannot both survive and drop") }
            guard let seed = revealed[survivor] else { throw SecureSumError.badReveal(survivor: survivor, dropped: dropped, reason: "no seed revealed") }
            guard seed.peer(of: survivor) == dropped else {
                throw SecureSumError.badReveal(survivor: survivor, dropped: dropped, reason: "the seed is for pair \(seed.lower.debugDescription)/\(seed.higher.debugDescription)")
            }
            let words = try MaskStream.words(seed: seed, stream: stream, count: sum.count)
            if AgentOrder.precedes(survivor, dropped) {
                for k in 0..<sum.count { sum[k] &-= words[k] }
            } else {
                for k in 0..<sum.count { sum[k] &+= words[k] }
            }
        }
    }
}
