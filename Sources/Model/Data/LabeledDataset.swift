// LabeledDataset: labelled texts in memory — label counts, seeded shuffling and splitting.

import LinAlg

/// One text and its label indices (into `LabeledDataset.labelNames`). Single-label
/// datasets have exactly one label per example; multi-label ones have zero or more.
public struct LabeledExample: Sendable, Equatable {
    public var text: String
    public var labels: [Int]

    public init(text: String, labels: [Int]) {
        self.text = text
        self.labels = labels
    }
}

public struct LabeledDataset: Sendable, Equatable {
    public var examples: [LabeledExample]
    /// Label index i is called labelNames[i].
    public var labelNames: [String]
    public var isMultiLabel: Bool

    public init(examples: [LabeledExample], labelNames: [String], isMultiLabel: Bool) {
        self.examples = examples
        self.labelNames = labelNames
        self.isMultiLabel = isMultiLabel
    }

    public var count: Int { examples.count }
    public var texts: [String] { examples.map(\.text) }
    /// The label of each example; single-label datasets only.
    public var singleLabels: [Int] {
        precondition(!isMultiLabel, "singleLabels of a multi-label dataset")
        return examples.map { $0.labels[0] }
    }

    /// How many examples carry each label (length = labelNames.count).
    public func labelCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: labelNames.count)
        for example in examples {
            for label in example.labels { counts[label] += 1 }
        }
        return counts
    }

    /// The same examples in an order fixed by `seed` (Fisher–Yates over SplitMix64, so the
    /// order is the same on every platform and Swift version).
    public func shuffled(seed: UInt64) -> LabeledDataset {
        var copy = self
        copy.examples = Self.permutation(count: examples.count, seed: seed).map { examples[$0] }
        return copy
    }

    /// Shuffles with `seed`, then cuts into consecutive parts of the given fractions (which
    /// must be positive and sum to 1 within 1e-9). Part k ends at round(n · Σ_{i≤k} fractions[i]),
    /// the last at n, so every example lands in exactly one part.
    public func split(fractions: [Double], seed: UInt64) -> [LabeledDataset] {
        precondition(!fractions.isEmpty && fractions.allSatisfy { $0 > 0 }
                     && abs(fractions.reduce(0, +) - 1) < 1e-9, "split fractions \(fractions) must be positive and sum to 1")
        let shuffledExamples = shuffled(seed: seed).examples
        let n = shuffledExamples.count
        var parts: [LabeledDataset] = []
        var start = 0
        var cumulative = 0.0
        for (k, fraction) in fractions.enumerated() {
            cumulative += fraction
            let end = k == fractions.count - 1 ? n : min(n, Int((cumulative * Double(n)).rounded()))
            var part = self
            part.examples = Array(shuffledExamples[start..<max(start, end)])
            parts.append(part)
            start = max(start, end)
        }
        return parts
    }

    /// Like `split`, but cuts each class separately (single-label data), so every part keeps
    /// the class proportions up to rounding; each part is then shuffled with `seed`.
    public func stratifiedSplit(fractions: [Double], seed: UInt64) -> [LabeledDataset] {
        precondition(!isMultiLabel, "stratifiedSplit needs single-label data")
        var parts = fractions.map { _ in [LabeledExample]() }
        for label in labelNames.indices {
            var ofClass = self
            ofClass.examples = examples.filter { $0.labels[0] == label }
            for (k, piece) in ofClass.split(fractions: fractions, seed: seed &+ UInt64(label)).enumerated() {
                parts[k] += piece.examples
            }
        }
        return parts.enumerated().map { k, examples in
            LabeledDataset(examples: examples, labelNames: labelNames, isMultiLabel: false).shuffled(seed: seed &+ UInt64(k))
        }
    }

    /// A seeded permutation of 0..<count (Fisher–Yates).
    public static func permutation(count: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<count)
        var rng = SplitMix64(seed: seed)
        var i = count - 1
        while i > 0 {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
            i -= 1
        }
        return order
    }
}
