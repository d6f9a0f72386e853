// GramCollector: RegMean's statistic — for every linear, G = Σ x xᵀ over the non-padding input
// rows seen in no-grad forwards (one pooled row per example for pooler and classifier).
// Query, key and value read the same input, so one Gram is stored for the query and the other
// two say `same_as` (DESIGN.md §3).
// With `clip` set (differentially private Grams, GramNoise.swift), every row is first scaled
// down to ‖x‖ ≤ clip·√d_in, which bounds what one example can add to a Gram.

import LinAlg
import RoundContract

public final class GramCollector: StatisticsCollector {
    public let needsInputs = true
    public let needsBackward = false
    private var grams: [String: SymmetricAccumulator] = [:]
    private var order: [String] = []
    /// Linears whose Gram is another's: name → the stored one.
    private var sameAs: [String: String] = [:]

    /// Row bound as an RMS per input coordinate (nil: rows are summed as they are).
    public let clip: Double?
    private var clipped: [Float] = []

    public init(clip: Double? = nil) { self.clip = clip }

    public func observeInput(of sites: [LinearSite], rows: UnsafePointer<Float>, count: Int) {
        let name = sites[0].name
        let acc: SymmetricAccumulator
        if let a = grams[name] { acc = a } else {
            acc = SymmetricAccumulator(dim: sites[0].inDim)
            grams[name] = acc
            order.append(name)
        }
        if let clip {
            let d = sites[0].inDim
            let bound = Float(clip * Double(d).squareRoot())
            if clipped.count < count * d { clipped = [Float](repeating: 0, count: count * d) }
            clipped.withUnsafeMutableBufferPointer { out in
                out.baseAddress!.update(from: rows, count: count * d)
                for r in 0..<count { Self.clipRow(out.baseAddress! + r * d, dim: d, bound: bound) }
                acc.add(out.baseAddress!, count: count)
            }
        } else {
            acc.add(rows, count: count)
        }
        acc.addRows(count)
        for other in sites.dropFirst() { sameAs[other.name] = name }
    }

    /// Adds another collector's sums (the same model's linears, fed other batches) into this one.
    func add(_ other: GramCollector) {
        for linear in other.order {
            guard let theirs = other.grams[linear] else { continue }
            if let mine = grams[linear] { mine.add(theirs) } else {
                let acc = SymmetricAccumulator(dim: theirs.dim)
                acc.add(theirs)
                grams[linear] = acc
                order.append(linear)
            }
        }
        sameAs.merge(other.sameAs) { mine, _ in mine }
    }

    /// Scales `row` (dim) down to norm `bound` when it is longer; the norm is summed in Double.
    static func clipRow(_ row: UnsafeMutablePointer<Float>, dim: Int, bound: Float) {
        var squared = 0.0
        for i in 0..<dim { squared += Double(row[i]) * Double(row[i]) }
        let norm = squared.squareRoot()
        guard norm > Double(bound) else { return }
        // Scale a hair below the bound so fp32 rounding cannot push the norm above it.
        let scale = Float(Double(bound) / norm * (1 - 1e-6))
        for i in 0..<dim { row[i] *= scale }
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
