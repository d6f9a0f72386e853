// StatisticsCollector: the one protocol every statistic (Gram, diagonal Fisher, K-FAC output
// factor) implements. The encoder calls the hooks a collector asks for during its forward
// (linear inputs) and backward (linear output gradients, parameter gradients).

import LinAlg

/// One Linear of the encoder: its HF name without `.weight` (unprefixed, e.g.
/// `encoder.layer.0.intermediate.dense`), sizes, and where its weight (outDim × inDim) and bias
/// live in the ParameterStore.
public struct LinearSite: Sendable, Hashable {
    public let name: String
    public let inDim: Int
    public let outDim: Int
    /// Pooler and classifier see one pooled vector per example rather than one row per token.
    public let perExample: Bool
    let weightOffset: Int
    let biasOffset: Int
}

public protocol StatisticsCollector: AnyObject {
    /// Wants `observeInput` during no-grad forwards.
    var needsInputs: Bool { get }
    /// Wants per-example backward passes of log p(y|x) (Fisher, K-FAC).
    var needsBackward: Bool { get }

    /// rows (count × sites[0].inDim): the non-padding input rows of the linears `sites`, which
    /// all read this same input (query/key/value); the first is the one to store.
    func observeInput(of sites: [LinearSite], rows: UnsafePointer<Float>, count: Int)
    /// rows (count × site.outDim): ∂ log p(y|x)/∂(output) of one linear at the non-padding
    /// positions, for one (x, y) pair whose expectation weight is `weight`.
    func observeOutputGradient(of site: LinearSite, rows: UnsafePointer<Float>, count: Int, weight: Double)
    /// The ParameterStore's gradients hold ∂ log p(y|x)/∂θ for one (x, y) with weight `weight`.
    func observeParameterGradients(_ parameters: ParameterStore, weight: Double)
    /// Called once per example after all its labels' backward passes.
    func finishExample()
    /// The collected statistics, named by `name(site or parameter name)`, as DESIGN.md §3 says.
    func export(naming name: (String) -> String) -> (tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String])
}

extension StatisticsCollector {
    public func observeInput(of sites: [LinearSite], rows: UnsafePointer<Float>, count: Int) {}
    public func observeOutputGradient(of site: LinearSite, rows: UnsafePointer<Float>, count: Int, weight: Double) {}
    public func observeParameterGradients(_ parameters: ParameterStore, weight: Double) {}
    public func finishExample() {}
}
