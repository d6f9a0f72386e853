// KFACOutputCollector: the K-FAC output factor of every linear (MaTS), Σ g gᵀ of the gradient
// g = ∂ log p(y|x)/∂(linear output) at each non-padding position, in expectation over y ∼ p(y|x).
// `<linear>.kfac_out` is d_out×d_out with `<linear>.kfac_out.num_rows` (positions, or examples
// for pooler and classifier), DESIGN.md §3.

import LinAlg
import RoundContract

public final class KFACOutputCollector: StatisticsCollector {
    public let needsInputs = false
    public let needsBackward = true
    private var factors: [String: SymmetricAccumulator] = [:]
    private var order: [String] = []
    /// Rows of the current example per linear (counted once, however many labels are summed).
    private var pending: [String: Int] = [:]

    public init() {}

    public func observeOutputGradient(of site: LinearSite, rows: UnsafePointer<Float>, count: Int, weight: Double) {
        let acc: SymmetricAccumulator
        if let a = factors[site.name] { acc = a } else {
            acc = SymmetricAccumulator(dim: site.outDim)
            factors[site.name] = acc
            order.append(site.name)
        }
        acc.add(rows, count: count, alpha: Float(weight))
        pending[site.name] = count
    }

    public func finishExample() {
        for (name, n) in pending { factors[name]!.addRows(n) }
        pending = [:]
    }

    public func factor(of linear: String) -> Tensor<Float>? { factors[linear]?.tensor() }
    public func rows(of linear: String) -> Int { factors[linear]?.rows ?? 0 }

    public func export(naming name: (String) -> String) -> (tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String]) {
        var tensors: [(name: String, tensor: Tensor<Float>)] = []
        var metadata: [String: String] = [:]
        for linear in order {
            tensors.append((StatisticKey.kfacOut(name(linear)), factors[linear]!.tensor()))
            metadata[StatisticKey.kfacOutRows(name(linear))] = "\(factors[linear]!.rows)"
        }
        return (tensors, metadata)
    }
}
