// The paired bootstrap over test items: a 95% interval for the accuracy difference of two
// models scored on the same items. Each resample draws items with replacement inside every
// (seed, test set) stratum, the same draw for both models, so the pairing survives; the
// statistic averages over test sets (the tables' macro mean) and then over seeds.

import LinAlg

public enum PairedBootstrap {
    /// One test set of one seed: per item, whether model A and model B were right.
    public struct Stratum: Sendable {
        public var a: [Bool]
        public var b: [Bool]
        public init(a: [Bool], b: [Bool]) {
            precondition(a.count == b.count && !a.isEmpty, "a paired stratum needs the same non-zero number of items for both models")
            self.a = a
            self.b = b
        }
    }

    public struct Interval: Sendable, Equatable, Codable {
        /// The statistic on the items themselves (no resampling).
        public var estimate: Double
        public var lower: Double
        public var upper: Double
        public var resamples: Int
    }

    /// accuracy(A) − accuracy(B): mean over a seed's strata, then mean over seeds.
    static func statistic(_ seeds: [[Stratum]], indices: (Int, Int, Int) -> Int) -> Double {
        var total = 0.0
        for (s, strata) in seeds.enumerated() {
            var sum = 0.0
            for (t, stratum) in strata.enumerated() {
                var diff = 0
                for k in 0..<stratum.a.count {
                    let i = indices(s, t, k)
                    diff += (stratum.a[i] ? 1 : 0) - (stratum.b[i] ? 1 : 0)
                }
                sum += Double(diff) / Double(stratum.a.count)
            }
            total += sum / Double(strata.count)
        }
        return total / Double(seeds.count)
    }

    /// The percentile interval (2.5%, 97.5% by default) of `resamples` paired resamples, drawn
    /// from a SplitMix64 stream seeded with `seed` (the same inputs give the same interval).
    public static func interval(seeds: [[Stratum]], resamples: Int = 2000, seed: UInt64 = 1, level: Double = 0.95) -> Interval {
        precondition(!seeds.isEmpty && seeds.allSatisfy { !$0.isEmpty } && resamples > 0)
        let estimate = statistic(seeds) { _, _, k in k }
        var rng = SplitMix64(seed: seed)
        var values: [Double] = []
        values.reserveCapacity(resamples)
        for _ in 0..<resamples {
            // Draw every stratum's indices first, so a resample is one fixed table of draws.
            let draws = seeds.map { strata in strata.map { st in (0..<st.a.count).map { _ in Int.random(in: 0..<st.a.count, using: &rng) } } }
            values.append(statistic(seeds) { s, t, k in draws[s][t][k] })
        }
        values.sort()
        let tail = (1 - level) / 2
        return Interval(estimate: estimate, lower: quantile(values, tail), upper: quantile(values, 1 - tail), resamples: resamples)
    }

    /// The empirical quantile with linear interpolation between order statistics (numpy's default).
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let low = Int(position.rounded(.down)), high = min(low + 1, sorted.count - 1)
        return sorted[low] + (position - Double(low)) * (sorted[high] - sorted[low])
    }
}
