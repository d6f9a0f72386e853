// NamedStatistics: one model's merge statistics (DESIGN.md §3) — Grams, diagonal Fishers,
// K-FAC output factors and training label counts — with the naming rules resolved.

import Foundation
import LinAlg

public struct NamedStatistics: Sendable {
    public var tensors: NamedTensors
    public var metadata: [String: String]

    public init(tensors: NamedTensors = NamedTensors(), metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// A Gram Σ x xᵀ (d_in×d_in, a sum over `numRows` rows) and the linear it was stored under.
    public struct Gram: Sendable {
        public var sum: Tensor<Float>
        public var numRows: Int
        public var storedUnder: String
    }

    /// True when `linear` has a Gram, directly or through `<linear>.gram.same_as`.
    public func hasGram(forLinear linear: String) -> Bool {
        tensors.contains(StatisticKey.gram(linear)) || metadata[StatisticKey.gramSameAs(linear)] != nil
    }

    /// The Gram of `linear` (following one `same_as` link), or nil when it has none.
    public func gram(forLinear linear: String) throws -> Gram? {
        var source = linear
        if !tensors.contains(StatisticKey.gram(linear)), let other = metadata[StatisticKey.gramSameAs(linear)] { source = other }
        guard let sum = tensors[StatisticKey.gram(source)] else {
            if source != linear { throw MergeError.missingStatistic(model: "", key: StatisticKey.gram(source) + " (same_as of \(linear))") }
            return nil
        }
        let key = StatisticKey.gramRows(source)
        guard let text = metadata[key] else { throw MergeError.missingStatistic(model: "", key: key) }
        guard let rows = Int(text), rows > 0 else { throw MergeError.badMetadata(model: "", key: key, value: text) }
        return Gram(sum: sum, numRows: rows, storedUnder: source)
    }

    /// The diagonal Fisher of parameter `name` (same shape as the parameter; a mean over examples).
    public func fisher(forParameter name: String) -> Tensor<Float>? { tensors[StatisticKey.fisher(name)] }

    /// The K-FAC output factor Σ g gᵀ (d_out×d_out) of `linear` and its row count.
    public func kfacOut(forLinear linear: String) throws -> (sum: Tensor<Float>, numRows: Int)? {
        guard let sum = tensors[StatisticKey.kfacOut(linear)] else { return nil }
        let key = StatisticKey.kfacOutRows(linear)
        guard let text = metadata[key] else { throw MergeError.missingStatistic(model: "", key: key) }
        guard let rows = Int(text), rows > 0 else { throw MergeError.badMetadata(model: "", key: key, value: text) }
        return (sum, rows)
    }

    /// `train.label_counts`: per-label example counts of the model's training data.
    public func labelCounts() throws -> [Int]? {
        let key = StatisticKey.labelCounts
        guard let text = metadata[key] else { return nil }
        guard let array = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any] else {
            throw MergeError.badMetadata(model: "", key: key, value: text)
        }
        var counts: [Int] = []
        for item in array {
            guard let n = (item as? NSNumber)?.intValue, n >= 0 else { throw MergeError.badMetadata(model: "", key: key, value: text) }
            counts.append(n)
        }
        return counts
    }
}

extension NamedStatistics {
    /// The Gram `linear` must have: present, d×d and finite. Errors name `model`, the stored
    /// Gram and `weight` (the tensor it belongs to). RegMean and MaTS both require it so.
    func requiredGram(forLinear linear: String, dimension d: Int, weight: String, model: String) throws -> Gram {
        guard let g = try naming(model: model, { try gram(forLinear: linear) }) else {
            throw MergeError.missingStatistic(model: model, key: StatisticKey.gram(linear))
        }
        guard g.sum.shape == [d, d] else {
            throw MergeError.shapeMismatch(model: model, tensor: StatisticKey.gram(g.storedUnder) + " (Gram of \(weight))", expected: [d, d], actual: g.sum.shape)
        }
        guard TensorKernels.allFinite(g.sum) else { throw MergeError.nonFinite(model: model, tensor: StatisticKey.gram(g.storedUnder)) }
        return g
    }
}
