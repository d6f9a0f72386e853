// `fisher`: per parameter entry Σ wᵢFᵢθᵢ / Σ wᵢFᵢ with Fᵢ the diagonal Fisher from
// `<param>.fisher` (Matena & Raffel, "Merging Models with Fisher-Weighted Averaging");
// entries where Σ wᵢFᵢ < fisher_floor fall back to the weighted average.
// `fisher_normalize: l2` first divides each model's Fisher by its L2 norm over every Fisher-merged
// tensor, F̂ᵢ = Fᵢ / ‖Fᵢ‖₂ (the per-model normalisation of MergeLM and FusionBench): without it a
// model whose Fisher is larger overall — a sharper task, more classes — outweighs the others
// everywhere, which is how Fisher merging collapses on different tasks. The floor then applies to
// Σ wᵢF̂ᵢ.

import LinAlg

public struct FisherMerge: MergeMethod {
    public init() {}
    public let name = "fisher"
    public let summary = "Diagonal-Fisher-weighted average per entry, with a floor falling back to the plain average."
    public let parameters: [ParameterSpec] = [
        ParameterSpec("fisher_floor", .number(0...1e30), default: .number(1e-6),
                      doc: "Entries whose Σ wᵢFᵢ is below this use Σ wᵢθᵢ / Σ wᵢ instead (Matena & Raffel use 1e-6)."),
        ParameterSpec("fisher_normalize", .choice(["none", "l2"]), default: .string("none"),
                      doc: "none: raw Fisher; l2: divide each model's Fisher by its L2 norm over all merged tensors first."),
    ]
    public let needsBase = false
    public func requiredStatistics(_ parameters: MergeParameters) -> Set<StatisticKind> {
        CommonParameters.headsStatistics(parameters).union([.fisher])
    }
    public func makeAccumulator(validated parameters: MergeParameters, base: NamedTensors?) throws -> any MergeAccumulator {
        FisherAccumulator(fold: ModelFold(method: name, parameters: parameters), floor: parameters.number("fisher_floor") ?? 1e-6,
                          normalize: parameters.string("fisher_normalize") == "l2")
    }
}

extension FisherMerge {
    /// One tensor from its sums Σ wFθ, Σ wF, Σ wθ and Σ w: Σ wFθ / Σ wF per entry, the plain
    /// average where Σ wF is below `floor`. Shared by the clear and the secure (sums-only) paths.
    static func resolve(name: String, shape: [Int], weighted: [Double], fisher: [Double], plain: [Double],
                        totalWeight: Double, floor: Double) -> (tensor: Tensor<Float>, entry: MergeReport.TensorEntry) {
        var out = TensorKernels.zerosFloat(shape)
        var fallbacks = 0
        out.withUnsafeMutableBufferPointer { po in
            for i in 0..<po.count {
                if fisher[i] < floor || !(fisher[i] > 0) {
                    po[i] = Float(plain[i] / totalWeight); fallbacks += 1
                } else {
                    po[i] = Float(weighted[i] / fisher[i])
                }
            }
        }
        return (out, .init(name: name, rule: "fisher", fallbackCount: fallbacks))
    }
}

final class FisherAccumulator: MergeAccumulator {
    /// Σ wFθ, Σ wF and Σ wθ, Σ w (for the fallback) of one tensor, fp64.
    private final class Sums {
        var weighted: [Double], fisher: [Double], plain: [Double]
        var totalWeight = 0.0
        init(count: Int) {
            weighted = [Double](repeating: 0, count: count); fisher = weighted; plain = weighted
        }
    }

    private let fold: ModelFold
    private let floor: Double
    private let normalize: Bool
    private var sums: [String: Sums] = [:]

    init(fold: ModelFold, floor: Double, normalize: Bool) { self.fold = fold; self.floor = floor; self.normalize = normalize }

    /// 1/‖F‖₂ over every Fisher-merged tensor of one model (1 when not normalising or all zero).
    private func scale(of fishers: [String: Tensor<Float>]) -> Double {
        guard normalize else { return 1 }
        var squares = 0.0
        for f in fishers.values { f.withUnsafeBufferPointer { p in for v in p { squares += Double(v) * Double(v) } } }
        return squares > 0 ? 1 / squares.squareRoot() : 1
    }

    func add(model: NamedTensors, statistics: NamedStatistics, weight: Double, name: String) throws {
        let (_, seconds) = try timed {
            let checked = try fold.check(model: model, statistics: statistics, weight: weight, name: name)
            // Which tensors are Fisher-merged is decided by the first model; check every Fisher
            // before touching a sum.
            let claimed = fold.isEmpty
                ? model.names.filter { !fold.isSeparateHead($0) && statistics.fisher(forParameter: $0) != nil }
                : Array(sums.keys)
            guard !claimed.isEmpty else {
                throw MergeError.missingStatistic(model: checked.name, key: "<param>.fisher (no tensor has a Fisher)")
            }
            var fishers: [String: Tensor<Float>] = [:]
            for n in claimed {
                guard let f = statistics.fisher(forParameter: n) else { throw MergeError.missingStatistic(model: checked.name, key: StatisticKey.fisher(n)) }
                guard f.shape == model[n]!.shape else {
                    throw MergeError.shapeMismatch(model: checked.name, tensor: StatisticKey.fisher(n), expected: model[n]!.shape, actual: f.shape)
                }
                guard TensorKernels.allFinite(f) else { throw MergeError.nonFinite(model: checked.name, tensor: StatisticKey.fisher(n)) }
                fishers[n] = f
            }
            let fisherScale = weight * scale(of: fishers)
            fold.commit(checked, model: model, weight: weight)
            if sums.isEmpty { for n in claimed { sums[n] = Sums(count: model[n]!.count) } }
            for n in fold.order where !fold.isSeparateHead(n) {
                let theta = model[n]!
                guard let s = sums[n], let f = fishers[n] else {
                    fold.average(n, theta, weight: weight, note: "no Fisher in the first model"); continue
                }
                theta.withUnsafeBufferPointer { pt in
                    f.withUnsafeBufferPointer { pf in
                        s.weighted.withUnsafeMutableBufferPointer { pw in
                            s.fisher.withUnsafeMutableBufferPointer { pF in
                                s.plain.withUnsafeMutableBufferPointer { pp in
                                    for i in 0..<pt.count {
                                        let t = Double(pt[i]), wf = fisherScale * Double(pf[i])
                                        pw[i] += wf * t; pF[i] += wf; pp[i] += weight * t
                                    }
                                }
                            }
                        }
                    }
                }
                s.totalWeight += weight
            }
        }
        fold.addTime(seconds)
    }

    func finish() throws -> MergeResult {
        let (claimed, seconds) = timed { () -> [String: (tensor: Tensor<Float>, entry: MergeReport.TensorEntry)] in
            var claimed: [String: (tensor: Tensor<Float>, entry: MergeReport.TensorEntry)] = [:]
            for (n, s) in sums {
                claimed[n] = FisherMerge.resolve(name: n, shape: fold.shapes[n]!, weighted: s.weighted, fisher: s.fisher,
                                                  plain: s.plain, totalWeight: s.totalWeight, floor: floor)
            }
            return claimed
        }
        return try fold.finish(claimed: claimed, finishSeconds: seconds)
    }
}
