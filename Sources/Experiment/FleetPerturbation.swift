// One real contribution (fine-tuned weights and their statistics) made into many distinct,
// still plausible ones for the fleet benchmark: seeded small noise per agent that keeps every
// property the aggregator checks — weights stay near the base (a relative change of at most
// `scale` of each tensor's RMS per element), Grams and K-FAC factors stay symmetric and
// positive semi-definite, Fishers stay non-negative.

import Foundation
import LinAlg
import RoundContract
import SafeTensors

public struct FleetPerturbation: Sendable {
    /// The agent's seed; the same seed gives the same bytes.
    public let seed: UInt64
    /// Relative size of the noise (e.g. 1e-3).
    public let scale: Double

    public init(seed: UInt64, scale: Double) {
        self.seed = seed
        self.scale = scale
    }

    /// How one tensor of a contribution is perturbed.
    public enum Rule: Equatable, Sendable {
        /// w + scale · rms(w) · u, u ~ U(−1, 1) per element.
        case weight
        /// c · G + diag(d): c = 1 + scale · u (one u per matrix), d_j = scale · mean(diag G) · v_j, v ~ U(0, 1).
        /// A positive multiple of a PSD matrix plus a non-negative diagonal is PSD; symmetry is kept.
        case factor
        /// f · (1 + scale · u) per element: non-negative stays non-negative (scale < 1).
        case fisher
        /// Copied as it is (e.g. label counts).
        case unchanged
    }

    /// The rule for a statistics file's tensor: Grams and K-FAC output factors are factors,
    /// Fisher diagonals are Fishers, anything else is copied.
    public static func statisticsRule(_ name: String) -> Rule {
        switch StatisticKey.parse(name)?.kind {
        case .gram?, .kfacOut?: return .factor
        case .fisher?: return .fisher
        default: return .unchanged
        }
    }

    /// A generator for tensor `name`, so a tensor's noise does not depend on the order of the file.
    func generator(for name: String) -> SplitMix64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325                 // FNV-1a of the name
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return SplitMix64(seed: seed ^ hash)
    }

    /// Uniform in [0, 1).
    private static func unit(_ rng: inout SplitMix64) -> Double { Double(rng.next() >> 11) * 0x1p-53 }

    /// `tensor` perturbed by `rule`, deterministically in (seed, name).
    public func apply(_ rule: Rule, to tensor: Tensor<Float>, name: String) -> Tensor<Float> {
        var rng = generator(for: name)
        var t = tensor
        switch rule {
        case .unchanged:
            break
        case .weight:
            var sumSquares = 0.0
            for x in t.storage { sumSquares += Double(x) * Double(x) }
            let amplitude = scale * (sumSquares / Double(max(t.count, 1))).squareRoot()
            t.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] += Float(amplitude * (2 * Self.unit(&rng) - 1)) }
            }
        case .fisher:
            t.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] *= Float(1 + scale * (2 * Self.unit(&rng) - 1)) }
            }
        case .factor:
            let n = t.rows
            guard t.rank == 2, t.cols == n, n > 0 else { return t }
            let c = Float(1 + scale * (2 * Self.unit(&rng) - 1))
            let shift = scale * t.meanDiagonal
            t.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] *= c }
                for j in 0..<n { p[j * n + j] += Float(shift * Self.unit(&rng)) }
            }
        }
        return t
    }

    /// Writes `source` perturbed to `destination` (atomically, one tensor at a time), with
    /// `rule(name)` choosing each tensor's rule; metadata is copied.
    public func write(_ source: String, to destination: String, rule: (String) -> Rule) throws {
        let file = try SafeTensorsFile(path: source)
        try SafeTensorsWriter.write(layout: file.names.map { ($0, file.entry($0)!.shape) }, metadata: file.metadata, to: destination) { name in
            apply(rule(name), to: try file.floatTensor(name), name: name)
        }
    }
}
