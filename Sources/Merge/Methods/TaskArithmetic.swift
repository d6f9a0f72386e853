// `task_arithmetic`: base + λ Σᵢ wᵢ (θᵢ − base) (Ilharco et al., "Editing Models with Task
// Arithmetic"). Tensors with no base counterpart (a new classifier) are averaged.

import LinAlg

public struct TaskArithmetic: MergeMethod {
    public init() {}
    public let name = "task_arithmetic"
    public let summary = "Pretrained base plus the scaled sum of task vectors θᵢ − base."
    public let parameters: [ParameterSpec] = [
        CommonParameters.lambda(doc: "Scale λ of the summed task vectors (per-model `weight`s multiply each task vector)."),
    ]
    public let needsBase = true
    public func requiredStatistics(_ parameters: MergeParameters) -> Set<StatisticKind> {
        CommonParameters.headsStatistics(parameters)
    }
    public func makeAccumulator(validated parameters: MergeParameters, base: NamedTensors?) throws -> any MergeAccumulator {
        guard let base else { throw MergeError.baseModelRequired(method: name) }
        return TaskVectorAccumulator(fold: ModelFold(method: name, parameters: parameters), base: base,
                                     rule: .sum(lambda: parameters.number("lambda") ?? 1))
    }
}

/// Shared by task_arithmetic and ties: streams task vectors τᵢ = θᵢ − base per tensor.
final class TaskVectorAccumulator: MergeAccumulator {
    enum Rule {
        /// base + λ Σ wᵢτᵢ.
        case sum(lambda: Double)
        /// TIES: τᵢ trimmed to its top `density` fraction by magnitude; elected sign
        /// γ = sign(Σ wᵢτ̂ᵢ); disjoint mean over the models agreeing with γ; base + λ · that.
        case ties(density: Double, lambda: Double)
    }

    /// Per tensor: Σ over models of the positive and negative parts (weighted) and their weights.
    private final class Sums {
        let base: Tensor<Float>
        var positive: [Double], negative: [Double], positiveWeight: [Double], negativeWeight: [Double]
        init(base: Tensor<Float>, ties: Bool) {
            self.base = base
            positive = [Double](repeating: 0, count: base.count)
            negative = ties ? positive : []
            positiveWeight = ties ? positive : []
            negativeWeight = ties ? positive : []
        }
    }

    private let fold: ModelFold
    private let base: NamedTensors
    private let rule: Rule
    private var sums: [String: Sums] = [:]

    init(fold: ModelFold, base: NamedTensors, rule: Rule) { self.fold = fold; self.base = base; self.rule = rule }

    private var ruleName: String { if case .ties = rule { return "ties" }; return "task_arithmetic" }

    func add(model: NamedTensors, statistics: NamedStatistics, weight: Double, name: String) throws {
        let (_, seconds) = try timed {
            let checked = try fold.check(model: model, statistics: statistics, weight: weight, name: name)
            if fold.isEmpty {
                var found: [String: Sums] = [:]
                for n in model.names where !fold.isSeparateHead(n) {
                    if let b = try BaseLookup.counterpart(of: n, shape: model[n]!.shape, in: base) {
                        if case .ties = rule { found[n] = Sums(base: b, ties: true) } else { found[n] = Sums(base: b, ties: false) }
                    }
                }
                sums = found
            }
            fold.commit(checked, model: model, weight: weight)
            for n in fold.order where !fold.isSeparateHead(n) {
                let theta = model[n]!
                guard let s = sums[n] else { fold.average(n, theta, weight: weight, note: "no counterpart in the base model"); continue }
                var tau = [Double](repeating: 0, count: theta.count)
                theta.withUnsafeBufferPointer { pt in
                    s.base.withUnsafeBufferPointer { pb in
                        for i in 0..<tau.count { tau[i] = Double(pt[i]) - Double(pb[i]) }
                    }
                }
                switch rule {
                case .sum:
                    s.positive.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] += weight * tau[i] } }
                case .ties(let density, _):
                    let threshold = Self.trimThreshold(tau, density: density)
                    for i in 0..<tau.count {
                        let t = tau[i]
                        guard abs(t) >= threshold, t != 0 else { continue }
                        if t > 0 { s.positive[i] += weight * t; s.positiveWeight[i] += weight }
                        else { s.negative[i] += weight * t; s.negativeWeight[i] += weight }
                    }
                }
            }
        }
        fold.addTime(seconds)
    }

    /// The magnitude of the k-th largest |τ|, k = ⌊density · count⌋ (∞ when k = 0: nothing kept).
    static func trimThreshold(_ tau: [Double], density: Double) -> Double {
        let k = Int(density * Double(tau.count))
        guard k > 0 else { return .infinity }
        guard k < tau.count else { return 0 }
        var magnitudes = tau.map(abs)
        magnitudes.sort(by: >)
        return magnitudes[k - 1]
    }

    func finish() throws -> MergeResult {
        let (claimed, seconds) = timed { () -> [String: (tensor: Tensor<Float>, entry: MergeReport.TensorEntry)] in
            var claimed: [String: (tensor: Tensor<Float>, entry: MergeReport.TensorEntry)] = [:]
            for (n, s) in sums {
                var out = TensorKernels.zerosFloat(s.base.shape)
                s.base.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer { po in
                        switch rule {
                        case .sum(let lambda):
                            for i in 0..<po.count { po[i] = Float(Double(pb[i]) + lambda * s.positive[i]) }
                        case .ties(_, let lambda):
                            for i in 0..<po.count {
                                let mass = s.positive[i] + s.negative[i]
                                var merged = 0.0
                                if mass > 0, s.positiveWeight[i] > 0 { merged = s.positive[i] / s.positiveWeight[i] }
                                else if mass < 0, s.negativeWeight[i] > 0 { merged = s.negative[i] / s.negativeWeight[i] }
                                po[i] = Float(Double(pb[i]) + lambda * merged)
                            }
                        }
                    }
                }
                claimed[n] = (out, .init(name: n, rule: ruleName))
            }
            return claimed
        }
        return try fold.finish(claimed: claimed, finishSeconds: seconds)
    }
}
