// ModelFold: what every streaming method shares — checking each incoming model against the
// first (names, shapes, finiteness, weight), naming models, averaging the tensors the method
// does not claim, the three `heads` modes, and assembling the result in the first model's order.

import Foundation
import LinAlg

final class ModelFold {
    enum HeadsMode: String { case average, keep, perLabel = "per_label" }

    let method: String
    let parameters: MergeParameters
    let headsMode: HeadsMode
    let headsPrefix: String

    private(set) var modelNames: [String] = []
    private(set) var weights: [Double] = []
    /// The first model's names and shapes; every later model must match.
    private(set) var order: [String] = []
    private(set) var shapes: [String: [Int]] = [:]
    private var averages: [String: WeightedSum] = [:]
    private var defaultNotes: [String: String] = [:]
    /// heads: keep — per model, its head tensors under their new names.
    private var keptHeads: [(model: String, tensors: [(name: String, tensor: Tensor<Float>)])] = []
    /// heads: per_label — per head tensor, Σ w θ per row and Σ w per row.
    private var labelSums: [String: (sum: [Double], rowWeight: [Double], unseen: Int)] = [:]
    private var labelCount: Int?
    private(set) var addSeconds = 0.0
    private var finished = false

    init(method: String, parameters: MergeParameters) {
        self.method = method
        self.parameters = parameters
        self.headsMode = HeadsMode(rawValue: parameters.string("heads") ?? "average") ?? .average
        self.headsPrefix = parameters.string("heads_prefix") ?? HeadsNaming.defaultPrefix
    }

    var isEmpty: Bool { modelNames.isEmpty }

    /// True when `name` is a head handled by the `heads` mode rather than by the method.
    func isSeparateHead(_ name: String) -> Bool { headsMode != .average && name.hasPrefix(headsPrefix) }

    /// A model that passed `check`: its name and (heads: per_label) its label counts.
    struct Checked {
        let name: String
        let labelCounts: [Int]?
    }

    /// Checks `model` against the first one (names, shapes, finiteness, weight, heads needs)
    /// without changing any state, so a rejected model leaves the sums as they were.
    func check(model: NamedTensors, statistics: NamedStatistics, weight: Double, name proposed: String) throws -> Checked {
        let name = proposed.isEmpty ? "model\(modelNames.count)" : proposed
        guard !modelNames.contains(name) else { throw MergeError.duplicateModelName(name: name) }
        guard weight.isFinite, weight > 0 else { throw MergeError.badWeight(model: name, weight: weight) }
        if !order.isEmpty {
            for n in order where !model.contains(n) { throw MergeError.missingTensor(model: name, tensor: n) }
            for n in model.names where shapes[n] == nil { throw MergeError.unexpectedTensor(model: name, tensor: n) }
            // heads: keep — each model keeps its own head, so heads of different label counts are fine.
            for n in order where model[n]!.shape != shapes[n]! && !(headsMode == .keep && isSeparateHead(n)) {
                throw MergeError.shapeMismatch(model: name, tensor: n, expected: shapes[n]!, actual: model[n]!.shape)
            }
        }
        for n in model.names where !TensorKernels.allFinite(model[n]!) { throw MergeError.nonFinite(model: name, tensor: n) }
        guard headsMode == .perLabel else { return Checked(name: name, labelCounts: nil) }
        guard let counts = try naming(model: name, { try statistics.labelCounts() }) else {
            throw MergeError.missingStatistic(model: name, key: StatisticKey.labelCounts + " (metadata; needed by heads: per_label)")
        }
        if let expected = labelCount, expected != counts.count {
            throw MergeError.badMetadata(model: name, key: StatisticKey.labelCounts, value: "\(counts.count) labels, the first model has \(expected)")
        }
        for n in model.names where n.hasPrefix(headsPrefix) && model[n]!.rows != counts.count {
            throw MergeError.badMetadata(model: name, key: "train.label_counts",
                                         value: "\(counts.count) labels, but head '\(n)' has \(model[n]!.rows) rows (shape \(model[n]!.shape))")
        }
        return Checked(name: name, labelCounts: counts)
    }

    /// Records a checked model: its name, weight and heads. Cannot fail.
    func commit(_ checked: Checked, model: NamedTensors, weight: Double) {
        if order.isEmpty {
            order = model.names
            for n in order { shapes[n] = model[n]!.shape }
        }
        if let counts = checked.labelCounts {
            labelCount = counts.count
            foldPerLabel(model: model, counts: counts, weight: weight)
        }
        if headsMode == .keep {
            let newPrefix = HeadsNaming.keptPrefix(agent: checked.name, headsPrefix: headsPrefix)
            let heads = order.filter { $0.hasPrefix(headsPrefix) }.map { (newPrefix + $0.dropFirst(headsPrefix.count), model[$0]!) }
            keptHeads.append((checked.name, heads))
        }
        modelNames.append(checked.name)
        weights.append(weight)
    }

    /// Folds tensor `name` into its plain weighted average; `note` says why it is averaged.
    func average(_ name: String, _ tensor: Tensor<Float>, weight: Double, note: String? = nil) {
        let sum = averages[name] ?? WeightedSum(shape: tensor.shape)
        averages[name] = sum
        sum.add(tensor, weight: weight)
        if let note { defaultNotes[name] = note }
    }

    func addTime(_ seconds: Double) { addSeconds += seconds }

    /// Σ w θ per label row over the models whose training data had that label (rows checked).
    private func foldPerLabel(model: NamedTensors, counts: [Int], weight: Double) {
        for name in order where name.hasPrefix(headsPrefix) {
            let t = model[name]!
            let cols = t.cols
            var entry = labelSums[name] ?? ([Double](repeating: 0, count: t.count), [Double](repeating: 0, count: t.rows), 0)
            t.withUnsafeBufferPointer { p in
                for r in 0..<t.rows where counts[r] > 0 {
                    for c in 0..<cols { entry.sum[r * cols + c] += weight * Double(p[r * cols + c]) }
                    entry.rowWeight[r] += weight
                }
            }
            // Rows no model saw fall back to the plain average, kept in a separate sum.
            average(name, t, weight: weight)
            labelSums[name] = entry
        }
    }

    /// Assembles the merged model: `claimed` tensors from the method, the rest averaged or
    /// handled by the heads mode, in the first model's order.
    func finish(claimed: [String: (tensor: Tensor<Float>, entry: MergeReport.TensorEntry)], finishSeconds: Double) throws -> MergeResult {
        guard !finished else { throw MergeError.finishedTwice }
        guard !isEmpty else { throw MergeError.noModels(method: method) }
        finished = true
        var out = NamedTensors()
        var entries: [MergeReport.TensorEntry] = []
        var keptWritten = false
        for name in order {
            if let c = claimed[name] {
                out.set(name, c.tensor); entries.append(c.entry); continue
            }
            if isSeparateHead(name) && headsMode == .keep {
                if !keptWritten {
                    for (model, heads) in keptHeads {
                        for (n, t) in heads {
                            out.set(n, t)
                            entries.append(.init(name: n, rule: "keep", note: "head of model \(model)"))
                        }
                    }
                    keptWritten = true
                }
                continue
            }
            guard let sum = averages[name] else { continue }
            let tensor = sum.average()
            if isSeparateHead(name), headsMode == .perLabel, let labels = labelSums[name] {
                let (head, entry) = Self.perLabelHead(name: name, average: tensor, rowSums: labels.sum, rowWeights: labels.rowWeight)
                out.set(name, head)
                entries.append(entry)
                continue
            }
            out.set(name, tensor)
            entries.append(.init(name: name, rule: "average", note: defaultNotes[name]))
        }
        var totals: [String: Int] = [:]
        for e in entries { totals[e.rule, default: 0] += 1 }
        var mapping: [String: String] = [:]
        if headsMode == .keep {
            for m in modelNames { mapping[m] = HeadsNaming.keptPrefix(agent: m, headsPrefix: headsPrefix) }
        }
        let report = MergeReport(method: method,
                                 parameters: parameters.values.mapValues(CommonParameters.reportString),
                                 models: modelNames, weights: weights, tensors: entries, totals: totals,
                                 headsMapping: mapping, addSeconds: addSeconds, finishSeconds: finishSeconds)
        return MergeResult(tensors: out, report: report)
    }
}

extension ModelFold {
    /// A per_label head: row r is Σ w θ_r / Σ w over the models that saw label r (`rowSums`,
    /// `rowWeights`), or the plain `average` row when none did. Shared with the secure path.
    static func perLabelHead(name: String, average: Tensor<Float>, rowSums: [Double], rowWeights: [Double])
        -> (Tensor<Float>, MergeReport.TensorEntry) {
        var tensor = average
        let (rows, cols) = (tensor.rows, tensor.cols)
        var unseen = 0
        tensor.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                guard rowWeights[r] > 0 else { unseen += 1; continue }
                for c in 0..<cols { p[r * cols + c] = Float(rowSums[r * cols + c] / rowWeights[r]) }
            }
        }
        return (tensor, .init(name: name, rule: "per_label", fallbackCount: unseen,
                              note: unseen > 0 ? "\(unseen) label rows seen by no model: plain average" : nil))
    }
}

/// Wall-clock seconds of `body`.
func timed<R>(_ body: () throws -> R) rethrows -> (R, Double) {
    let start = DispatchTime.now().uptimeNanoseconds
    let r = try body()
    return (r, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
}
