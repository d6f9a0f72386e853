// FisherCollector: the diagonal empirical-model Fisher E_x E_{y∼p(y|x)} (∂ log p(y|x)/∂θ)² of
// every parameter (Fisher merging). The driver feeds one (x, y) backward at a time with its
// expectation weight; sums are fp64, the stored value is the mean over examples (fp32).

import LinAlg
import RoundContract

public final class FisherCollector: StatisticsCollector {
    public let needsInputs = false
    public let needsBackward = true
    private let count: Int
    private let names: [(name: String, shape: [Int], offset: Int)]
    private let sum: UnsafeMutablePointer<Double>
    public private(set) var examples = 0

    public init(parameters: ParameterStore) {
        count = parameters.count
        names = parameters.entries.map { ($0.name, $0.shape, $0.offset) }
        sum = .allocate(capacity: max(count, 1))
        sum.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { sum.deallocate() }

    public func observeParameterGradients(_ parameters: ParameterStore, weight: Double) {
        let g = parameters.gradients.baseAddress!
        for i in 0..<count {
            let v = Double(g[i])
            sum[i] += weight * v * v
        }
    }

    public func finishExample() { examples += 1 }

    /// The Fisher of one parameter (mean over examples so far).
    public func fisher(of parameter: String) -> Tensor<Float>? {
        guard let e = names.first(where: { $0.name == parameter }) else { return nil }
        return tensor(e)
    }

    private func tensor(_ e: (name: String, shape: [Int], offset: Int)) -> Tensor<Float> {
        let n = e.shape.reduce(1, *)
        let inv = 1 / Double(max(examples, 1))
        var t = Tensor<Float>(shape: e.shape)
        t.withUnsafeMutableBufferPointer { out in for i in 0..<n { out[i] = Float(sum[e.offset + i] * inv) } }
        return t
    }

    public func export(naming name: (String) -> String) -> (tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String]) {
        (names.map { (StatisticKey.fisher(name($0.name)), tensor($0)) }, [StatisticKey.fisherExamples: "\(examples)"])
    }
}
