// Non-i.i.d. partitions of one dataset as in the RegMean paper's App. B: a seeded random
// "key class" puts a fixed fraction (0.8) of its examples into partition 0 and the rest into
// the others; the remaining examples fill the partitions up to equal sizes.

import LinAlg
import Model

public struct NonIIDPartition: Sendable, Equatable {
    /// Index of the key class in the dataset's label names.
    public var keyClass: Int
    /// Example indices (into the input dataset) of each partition.
    public var members: [[Int]]

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case tooFewExamples(count: Int, partitions: Int)
        case keyClassTooLarge(keyInFirst: Int, partitionSize: Int)
        public var description: String {
            switch self {
            case let .tooFewExamples(count, partitions): return "non-i.i.d. split: \(count) examples cannot fill \(partitions) partitions"
            case let .keyClassTooLarge(keyInFirst, size):
                return "non-i.i.d. split: the key class puts \(keyInFirst) examples into partition 0, more than its size \(size); lower key_fraction or use more examples"
            }
        }
    }

    /// Splits `labels` (one class index per example, `classes` classes) into `partitions`
    /// equal-sized parts (sizes differ by at most one, earlier parts larger). The key class is
    /// drawn with `seed` among the classes present; ⌊keyFraction·n_key⌉ of its examples (in a
    /// seeded order) go to partition 0, the rest are dealt round-robin to partitions 1…P−1.
    /// Every other example (seeded order) then fills the partitions in index order up to their size.
    public static func make(labels: [Int], classes: Int, partitions: Int, keyFraction: Double, seed: UInt64) throws -> NonIIDPartition {
        precondition(partitions >= 2 && keyFraction >= 0 && keyFraction <= 1)
        let n = labels.count
        guard n >= partitions else { throw Failure.tooFewExamples(count: n, partitions: partitions) }
        let present = (0..<classes).filter { c in labels.contains(c) }
        var rng = SplitMix64(seed: seed)
        let key = present[Int(rng.next() % UInt64(present.count))]
        let order = LabeledDataset.permutation(count: n, seed: seed &+ 1)
        let keyExamples = order.filter { labels[$0] == key }
        let others = order.filter { labels[$0] != key }
        let sizes = (0..<partitions).map { p in n / partitions + (p < n % partitions ? 1 : 0) }
        let inFirst = Int((keyFraction * Double(keyExamples.count)).rounded())
        guard inFirst <= sizes[0] else { throw Failure.keyClassTooLarge(keyInFirst: inFirst, partitionSize: sizes[0]) }
        var members = [[Int]](repeating: [], count: partitions)
        members[0] = Array(keyExamples.prefix(inFirst))
        for (i, e) in keyExamples.dropFirst(inFirst).enumerated() { members[1 + i % (partitions - 1)].append(e) }
        var rest = others[...]
        for p in 0..<partitions {
            // The key class's rest may overfill a later partition; take its overflow back into the pool.
            while members[p].count > sizes[p] { rest.append(members[p].removeLast()) }
        }
        for p in 0..<partitions {
            while members[p].count < sizes[p], let e = rest.popFirst() { members[p].append(e) }
        }
        return NonIIDPartition(keyClass: key, members: members)
    }
}
