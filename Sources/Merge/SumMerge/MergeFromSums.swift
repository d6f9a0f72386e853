// MergeFromSums: the aggregator side of a merge run on sums. Given the layout every agent
// used and Σ over agents of each summand (unmasked, decoded), it produces the merged model
// the clear method would: RegMean solves (Σ G̃ᵢ) Wᵀ = α ΣGᵢWᵢᵀ + (1−α) Σ diag(Gᵢ)Wᵢᵀ with
// Σ G̃ᵢ = α ΣGᵢ + (1−α) diag(ΣGᵢ) — so one pair of sums serves every α — Fisher applies its
// floor to Σ wF, averages divide by Σ w, and heads follow the `heads` mode.

import Foundation
import LinAlg

extension SumMerge {
    /// Merges from `sums` (aligned with `layout.summands`). `models` are the agents whose
    /// terms the sums hold, with their merge weights; `keptHeads` their heads under
    /// heads: keep (original names).
    public static func merge(layout: SumLayout, parameters raw: [String: MergeValue], sums: [[Double]],
                             models: [(name: String, weight: Double)], keptHeads: [String: NamedTensors] = [:],
                             parallel: Bool = true) throws -> MergeResult {
        let name = layout.method
        guard methods.contains(name) else { throw MergeError.notSummable(method: name, summable: methods) }
        guard !models.isEmpty else { throw MergeError.noModels(method: name) }
        let parameters = try MethodRegistry.method(named: name).validate(parameters: raw)
        let heads = ModelFold(method: name, parameters: parameters)
        guard sums.count == layout.summands.count else {
            throw MergeError.summandMismatch(what: "the layout", expected: "\(layout.summands.count) summands", actual: "\(sums.count)")
        }
        var byKey: [String: [Double]] = [:]
        for (spec, sum) in zip(layout.summands, sums) {
            guard sum.count == spec.count else { throw MergeError.summandMismatch(what: spec.key, expected: "\(spec.count) entries", actual: "\(sum.count)") }
            byKey[spec.key] = sum
        }
        func sum(_ tensor: String, _ role: SummandRole) throws -> [Double] {
            guard let s = byKey[SummandSpec(tensor: tensor, role: role, count: 0).key] else {
                throw MergeError.summandMismatch(what: tensor, expected: "a \(role.rawValue) sum", actual: "none")
            }
            return s
        }
        let totalWeight = models.reduce(0) { $0 + $1.weight }
        let shapes = Dictionary(uniqueKeysWithValues: layout.tensors.map { ($0.name, $0.shape) })
        // Solves, divisions and heads, timed as the clear methods time their finish().
        func assemble() throws -> (NamedTensors, [MergeReport.TensorEntry]) {

            // RegMean: one fp64 solve per linear, concurrently.
            let linears = layout.summands.filter { $0.role == .gramTimesWeight }
            var solved = [(Tensor<Float>, MergeReport.TensorEntry)?](repeating: nil, count: linears.count)
            if !linears.isEmpty {
                var grams: [String: [Double]] = [:]
                for spec in layout.summands where spec.role == .gram { grams[spec.tensor] = try sum(spec.tensor, .gram) }
                let systems = try linears.map { spec -> (gram: Tensor<Double>, rhs: Tensor<Double>, out: Int, d: Int, alpha: Double) in
                    guard let shape = shapes[spec.tensor], shape.count == 2 else {
                        throw MergeError.summandMismatch(what: spec.key, expected: "a 2-D tensor in the layout", actual: "\(shapes[spec.tensor] ?? [])")
                    }
                    let (out, d) = (shape[0], shape[1])
                    guard let source = spec.gram, let packed = grams[source] else {
                        throw MergeError.summandMismatch(what: spec.key, expected: "its Gram's sum", actual: spec.gram ?? "none")
                    }
                    let alpha = parameters.number("alpha", forTensor: spec.tensor) ?? 0.9
                    let g = try SymmetricPacking.unpack(packed, dimension: d)
                    var gTilde = g
                    for i in 0..<d { for j in 0..<d where i != j { gTilde[i * d + j] = alpha * g[i * d + j] } }
                    let gw = try sum(spec.tensor, .gramTimesWeight), dw = try sum(spec.tensor, .diagTimesWeight)
                    let rhs = zip(gw, dw).map { alpha * $0 + (1 - alpha) * $1 }
                    return (try Tensor(shape: [d, d], storage: gTilde), try Tensor(shape: [d, out], storage: rhs), out, d, alpha)
                }
                let results = SolveSlots(count: linears.count)
                try ParallelLinears.run(count: linears.count, parallel: parallel) { i in
                    let s = systems[i]
                    results.set(i, try RegMean.solve(gram: s.gram, rhs: s.rhs, weightName: linears[i].tensor, outDim: s.out, inDim: s.d, alpha: s.alpha))
                }
                solved = results.values
            }
            var claimed: [String: (Tensor<Float>, MergeReport.TensorEntry)] = [:]
            for (spec, result) in zip(linears, solved) { claimed[spec.tensor] = result }

            let floor = parameters.number("fisher_floor") ?? 1e-6
            var out = NamedTensors()
            var entries: [MergeReport.TensorEntry] = []
            var keptWritten = false
            for slot in layout.tensors {
                let n = slot.name
                if let c = claimed[n] { out.set(n, c.0); entries.append(c.1); continue }
                if heads.isSeparateHead(n) && heads.headsMode == .keep {
                    guard !keptWritten else { continue }
                    keptWritten = true
                    for m in models {
                        let prefix = HeadsNaming.keptPrefix(agent: m.name, headsPrefix: heads.headsPrefix)
                        for h in layout.tensors where heads.isSeparateHead(h.name) {
                            guard let t = keptHeads[m.name]?[h.name] else { throw MergeError.missingTensor(model: m.name, tensor: h.name + " (kept head)") }
                            guard t.shape.count == h.shape.count, t.shape.dropFirst() == h.shape.dropFirst() else {
                                throw MergeError.shapeMismatch(model: m.name, tensor: h.name, expected: h.shape, actual: t.shape)
                            }
                            let renamed = prefix + h.name.dropFirst(heads.headsPrefix.count)
                            out.set(renamed, t)
                            entries.append(.init(name: renamed, rule: "keep", note: "head of model \(m.name)"))
                        }
                    }
                    continue
                }
                let average = WeightedSum.average(sum: try sum(n, .weighted), totalWeight: totalWeight, shape: slot.shape)
                if heads.isSeparateHead(n) && heads.headsMode == .perLabel {
                    let (head, entry) = ModelFold.perLabelHead(name: n, average: average, rowSums: try sum(n, .labelRows), rowWeights: try sum(n, .labelRowWeights))
                    out.set(n, head); entries.append(entry); continue
                }
                if name == "fisher", byKey[SummandSpec(tensor: n, role: .fisher, count: 0).key] != nil {
                    let r = FisherMerge.resolve(name: n, shape: slot.shape, weighted: try sum(n, .fisherTimesWeight), fisher: try sum(n, .fisher),
                                                plain: try sum(n, .weighted), totalWeight: totalWeight, floor: floor)
                    out.set(n, r.tensor); entries.append(r.entry); continue
                }
                out.set(n, average)
                entries.append(.init(name: n, rule: "average", note: name == "fisher" ? "no Fisher" : nil))
            }
            return (out, entries)
        }
        let ((out, entries), seconds) = try timed(assemble)
        var totals: [String: Int] = [:]
        for e in entries { totals[e.rule, default: 0] += 1 }
        var mapping: [String: String] = [:]
        if heads.headsMode == .keep {
            for m in models { mapping[m.name] = HeadsNaming.keptPrefix(agent: m.name, headsPrefix: heads.headsPrefix) }
        }
        let report = MergeReport(method: name, parameters: parameters.values.mapValues(CommonParameters.reportString),
                                 models: models.map(\.name), weights: models.map(\.weight), tensors: entries, totals: totals,
                                 headsMapping: mapping, addSeconds: 0, finishSeconds: seconds)
        return MergeResult(tensors: out, report: report)
    }

    /// The tensors of `layout` that heads: keep leaves to each agent (sent in the clear, never
    /// summed); empty for the other heads modes.
    public static func keptHeadNames(layout: SumLayout, parameters raw: [String: MergeValue]) throws -> [String] {
        let parameters = try MethodRegistry.method(named: layout.method).validate(parameters: raw)
        let heads = ModelFold(method: layout.method, parameters: parameters)
        guard heads.headsMode == .keep else { return [] }
        return layout.tensors.map(\.name).filter { heads.isSeparateHead($0) }
    }

    /// One result slot per concurrent solve; each solve writes only its own slot.
    private final class SolveSlots: @unchecked Sendable {
        private(set) var values: [(Tensor<Float>, MergeReport.TensorEntry)?]
        private let lock = NSLock()
        init(count: Int) { values = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ value: (Tensor<Float>, MergeReport.TensorEntry)) { lock.lock(); values[i] = value; lock.unlock() }
    }
}
