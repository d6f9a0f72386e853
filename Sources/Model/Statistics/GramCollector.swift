// GramCollector: RegMean's statistic — for every linear, G = Σ x xᵀ over the non-padding input
// rows seen in no-grad forwards (one pooled row per example for pooler and classifier).
// Query, key and value read the same input, so one Gram is stored for the query and the other
// two say `same_as` (DESIGN.md §3).

import LinAlg
import RoundContract

public final class GramCollector: StatisticsCollector {
    public let needsInputs = true
    public let needsBackward = false
    private var grams: [String: SymmetricAccumulator] = [:]
    private var order: [String] = []
    /// Linears whose Gram is another's: name → the stored one.
    private var sameAs: [String: String] = [:]

    public init() {}

    public func observeInput(of sites: [LinearSite], rows: UnsafePointer<Float>, count: Int) {
        let name = sites[0].name
        let acc: SymmetricAccumulator
        if let a = grams[name] { acc = a } else {
            acc = SymmetricAccumulator(dim: sites[0].inDim)
            grams[name] = acc
            order.append(name)
        }
        acc.add(rows, count: count)
        acc.addRows(count)
        for other in sites.dropFirst() { sameAs[other.name] = name }
    }

    /// Rows accumulated for `linear` (following same_as).
    public func rows(of linear: String) -> Int { grams[sameAs[linear] ?? linear]?.rows ?? 0 }

    /// The Gram of `linear` (following same_as), d_in×d_in.
    public func gram(of linear: String) -> Tensor<Float>? { grams[sameAs[linear] ?? linear]?.tensor() }

    public func export(naming name: (String) -> String) -> (tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String]) {
        var tensors: [(name: String, tensor: Tensor<Float>)] = []
        var metadata: [String: String] = [:]
        for linear in order {
            let acc = grams[linear]!
            tensors.append((StatisticKey.gram(name(linear)), acc.tensor()))
            metadata[StatisticKey.gramRows(name(linear))] = "\(acc.rows)"
        }
        for (other, stored) in sameAs {
            metadata[StatisticKey.gramSameAs(name(other))] = name(stored)
            metadata[StatisticKey.gramRows(name(other))] = "\(grams[stored]!.rows)"
        }
        return (tensors, metadata)
    }
}
