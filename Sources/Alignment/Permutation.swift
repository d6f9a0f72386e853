// Permutation: a reordering of n units as the gather list every alignment step uses — new unit i
// is old unit p[i] — and the few operations on it (check, inverse, compose, per-head layout).

import LinAlg

public struct Permutation: Sendable, Equatable, CustomStringConvertible {
    /// p[i]: the old index of new unit i.
    public let indices: [Int]

    public init(identity n: Int) { indices = Array(0..<n) }

    /// Checks that `indices` holds every 0..<n exactly once; `what` names it in the error.
    public init(_ indices: [Int], what: String = "permutation") throws {
        var seen = [Bool](repeating: false, count: indices.count)
        for (i, j) in indices.enumerated() {
            guard (0..<indices.count).contains(j) else {
                throw AlignmentError.invalidPermutation(what: what, reason: "entry \(i) is \(j), outside 0..<\(indices.count)")
            }
            guard !seen[j] else { throw AlignmentError.invalidPermutation(what: what, reason: "\(j) appears twice") }
            seen[j] = true
        }
        self.indices = indices
    }

    /// A uniformly random permutation of n units (Fisher–Yates).
    public init<G: RandomNumberGenerator>(random n: Int, using rng: inout G) {
        indices = Array(0..<n).shuffled(using: &rng)
    }

    public var count: Int { indices.count }
    public var isIdentity: Bool { indices.enumerated().allSatisfy { $0.offset == $0.element } }
    public subscript(i: Int) -> Int { indices[i] }
    public var description: String { indices.description }

    /// q with q[p[i]] = i: gathering by p, then by q, restores the original order.
    public var inverse: Permutation {
        var q = [Int](repeating: 0, count: count)
        for (i, j) in indices.enumerated() { q[j] = i }
        return Permutation(unchecked: q)
    }

    /// Gathering by self, then by `next`: unit i of the result is old unit self[next[i]].
    public func then(_ next: Permutation) -> Permutation {
        Permutation(unchecked: next.indices.map { indices[$0] })
    }

    /// The feature permutation of a multi-head layer: head j of the result is old head
    /// `heads[j]`, and inside it feature i is that head's feature `inner[j][i]`.
    public static func heads(_ heads: Permutation, inner: [Permutation], headSize d: Int) -> Permutation {
        precondition(inner.count == heads.count && inner.allSatisfy { $0.count == d }, "one inner permutation of \(d) per head")
        var p: [Int] = []
        p.reserveCapacity(heads.count * d)
        for j in 0..<heads.count { for i in 0..<d { p.append(heads[j] * d + inner[j][i]) } }
        return Permutation(unchecked: p)
    }

    init(unchecked indices: [Int]) { self.indices = indices }
}
