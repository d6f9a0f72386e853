// VocabularyScore: how much of an agent's vocabulary an audit recovered, against the truth.
// Special tokens ([CLS], [SEP], [PAD]) are left out: every sequence has them.

import Foundation

public struct VocabularyScore: Sendable, Codable, Equatable {
    /// Distinct true tokens (k for the first pair of figures).
    public var distinct: Int
    public var recallAtDistinct: Double
    public var precisionAtDistinct: Double
    public var recallAt100: Double
    public var precisionAt100: Double
    /// Spearman correlation of recovered (rounded) vs true counts over the true vocabulary (unrecovered = 0).
    public var spearman: Double
    /// True tokens whose recovered count rounds to the true count, as a fraction of `distinct`.
    public var exactCounts: Double

    /// One line for logs and the CLI: "2164 distinct; recall@2164 0.929, recall@100 …".
    public var summary: String {
        String(format: "%d distinct; recall@%d %.3f, recall@100 %.3f, precision@100 %.3f; Spearman %.3f; exact counts %.3f",
               distinct, distinct, recallAtDistinct, recallAt100, precisionAt100, spearman, exactCounts)
    }

    /// `ranking` most likely first; `recovered` counts (nil: the audit gives no counts, only a ranking).
    public init(ranking: [Int32], recovered: [Int32: Double]?, truth: [Int32: Int], excluded: Set<Int32>) {
        let truthKept = truth.filter { !excluded.contains($0.key) }
        let ranked = ranking.filter { !excluded.contains($0) }
        distinct = truthKept.count
        func hits(_ k: Int) -> Int { ranked.prefix(k).filter { truthKept[$0] != nil }.count }
        let n = max(distinct, 1)
        recallAtDistinct = Double(hits(distinct)) / Double(n)
        precisionAtDistinct = Double(hits(distinct)) / Double(n)
        recallAt100 = Double(hits(100)) / Double(n)
        precisionAt100 = Double(hits(100)) / 100
        let tokens = truthKept.keys.sorted()
        let rank = Dictionary(uniqueKeysWithValues: ranked.enumerated().map { ($1, Double($0)) })
        // Recovered "size": the count rounded to an integer (true counts are integers, so float
        // dust must not break their ties), else minus the rank (higher = more likely).
        let estimate = tokens.map { id in recovered.map { r in (r[id] ?? 0).rounded() } ?? -(rank[id] ?? Double(ranked.count)) }
        spearman = Self.spearman(estimate, tokens.map { Double(truthKept[$0]!) })
        exactCounts = recovered.map { r in
            Double(tokens.filter { Int((r[$0] ?? 0).rounded()) == truthKept[$0]! }.count) / Double(n)
        } ?? 0
    }

    /// Pearson correlation of the average ranks (ties share their mean rank).
    static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        func ranks(_ x: [Double]) -> [Double] {
            let order = x.indices.sorted { x[$0] < x[$1] }
            var r = [Double](repeating: 0, count: x.count)
            var i = 0
            while i < order.count {
                var j = i
                while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
                for k in i...j { r[order[k]] = Double(i + j) / 2 }
                i = j + 1
            }
            return r
        }
        guard a.count > 1 else { return 0 }
        let ra = ranks(a), rb = ranks(b)
        let ma = ra.reduce(0, +) / Double(ra.count), mb = rb.reduce(0, +) / Double(rb.count)
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in ra.indices { sab += (ra[i] - ma) * (rb[i] - mb); saa += (ra[i] - ma) * (ra[i] - ma); sbb += (rb[i] - mb) * (rb[i] - mb) }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }
}
