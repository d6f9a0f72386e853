// One table from the same table run under several seeds: every cell becomes mean ± sample
// std over the seeds (and the mean column the mean ± std of the per-seed row means). Rows
// are matched by position: each seed's run builds its tables in the same order.

import Foundation

public enum SeedAggregateError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(table: String, detail: String)
    public var description: String {
        switch self {
        case let .shapeMismatch(table, detail): return "table '\(table)': the seeds' runs differ in shape (\(detail))"
        }
    }
}

extension Score {
    /// Mean and sample standard deviation (n − 1) over `scores`; one score comes back as it is.
    public static func acrossSeeds(_ scores: [Score]) -> Score? {
        guard let mean = Score.mean(scores) else { return nil }
        guard scores.count > 1 else { return scores[0] }
        func std(_ values: [Double], _ m: Double) -> Double {
            (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
        }
        return Score(accuracy: mean.accuracy, macroF1: mean.macroF1,
                     accuracyStd: std(scores.map(\.accuracy), mean.accuracy), macroF1Std: std(scores.map(\.macroF1), mean.macroF1))
    }
}

extension ResultTable {
    /// `tables` (one per seed, same title, columns and rows) as one table of mean ± std cells.
    /// A cell missing in any seed stays missing. Rows whose label differs between seeds (the
    /// greedy prefixes) keep the first seed's label and list every seed's in the note.
    public static func acrossSeeds(_ tables: [ResultTable]) throws -> ResultTable {
        guard let first = tables.first else { throw SeedAggregateError.shapeMismatch(table: "?", detail: "no runs") }
        guard tables.count > 1 else { return first }
        for t in tables where t.columns != first.columns || t.rows.count != first.rows.count {
            throw SeedAggregateError.shapeMismatch(table: first.title, detail: "\(t.columns.count) columns and \(t.rows.count) rows against \(first.columns.count) and \(first.rows.count)")
        }
        var out = ResultTable(title: first.title, columns: first.columns, showMean: first.showMean)
        for (r, row) in first.rows.enumerated() {
            let runs = tables.map { $0.rows[r] }
            var cells: [Score?] = []
            for c in row.cells.indices {
                let values = runs.map { $0.cells[c] }
                cells.append(values.contains { $0 == nil } ? nil : Score.acrossSeeds(values.compactMap { $0 }))
            }
            var aggregated = Row(label: row.label, group: row.group, cells: cells)
            let labels = runs.map(\.label), notes = runs.compactMap(\.note)
            if Set(labels).count > 1 || Set(notes).count > 1 {
                aggregated.note = "per seed: " + runs.enumerated().map { k, run in
                    "\(k + 1): " + (Set(labels).count > 1 ? run.label : "") + (run.note.map { Set(labels).count > 1 ? " (\($0))" : $0 } ?? "")
                }.joined(separator: "; ")
            } else {
                aggregated.note = row.note
            }
            let means = runs.map(\.mean)
            if !means.contains(where: { $0 == nil }) { aggregated.seedMean = Score.acrossSeeds(means.compactMap { $0 }) }
            out.rows.append(aggregated)
        }
        return out
    }
}
