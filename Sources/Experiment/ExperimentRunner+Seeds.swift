// The runs of one experiment (one per seed) combined into its report: tables as mean ± std
// over seeds, the paired bootstrap intervals of the method comparisons, and whether MTL —
// the supposed upper bound — falls below the individual models on their own test sets.

import Foundation

extension ExperimentRunner {
    /// The comparisons the bootstrap makes: (name, A, B) for accuracy(A) − accuracy(B).
    var comparisons: [(name: String, a: String, b: String)] {
        let regmean = "RegMean α=" + Self.format(bootstrapAlpha)
        return [(regmean + " − Simple", "regmean", "simple"), (regmean + " − Fisher", "regmean", "fisher"), ("MTL − " + regmean, "mtl", "regmean")]
    }

    func combine(_ runs: [Report], shared: Report) throws -> Report {
        var report = shared
        let first = runs[0]
        for (index, entry) in first.tables.enumerated() {
            let table = try ResultTable.acrossSeeds(runs.map { $0.tables[index].table })
            report.tables.append((entry.slug, table, entry.caption))
        }
        report.mergeSeconds = runs.flatMap(\.mergeSeconds)
        for note in runs.flatMap(\.notes) where !report.notes.contains(note) { report.notes.append(note) }
        if runs.count > 1 {
            report.json["runs"] = try runs.enumerated().map { k, run -> [String: Any] in
                ["seed": config.runs[k].seed, "agent_seeds": config.runs[k].agentSeeds,
                 "tables": try run.tables.map { ["slug": $0.slug, "table": try JSONSerialization.jsonObject(with: JSONEncoder().encode($0.table))] }]
            }
        }
        if let mtl = runs.compactMap(\.mtl).first {
            let kept = runs.compactMap(\.mtl).map { "\($0.bestEpoch) of \($0.validation.count)" }
            report.notes.append("MTL early stopping: up to \(mtl.maxEpochs) epochs, validation (mean macro-F1 over the validation sets) after each, the best epoch kept, stop after 2 epochs without improvement; epoch kept per seed: " + kept.joined(separator: ", ") + ".")
            report.json["mtl_epochs"] = runs.compactMap(\.mtl).map { ["validation": $0.validation, "best_epoch": $0.bestEpoch, "max_epochs": $0.maxEpochs] as [String: Any] }
        }
        if let note = mtlBelowIndividual(report.tables.first?.table) { report.notes.append(note) }
        if let (section, json) = bootstrap(runs) {
            report.sections.append(section)
            report.json["bootstrap"] = json
        }
        return report
    }

    /// Names the columns where MTL's mean accuracy is below the individual model trained on
    /// that column's own data (nil when the table has no MTL row).
    func mtlBelowIndividual(_ table: ResultTable?) -> String? {
        guard let table, let mtl = table.rows.first(where: { $0.label.hasPrefix("MTL") }) else { return nil }
        let own = ["Domain-specific fᵢ on domain i", "Individual fᵢ on its own task", "Best f₁..N"]
        guard let individual = own.lazy.compactMap({ label in table.rows.first { $0.label == label } }).first else { return nil }
        var below: [String] = []
        for (c, column) in table.columns.enumerated() {
            if let m = mtl.cells[c], let i = individual.cells[c], m.accuracy < i.accuracy {
                below.append(String(format: "%@ (MTL %.1f vs %.1f)", column, 100 * m.accuracy, 100 * i.accuracy))
            }
        }
        return below.isEmpty
            ? "MTL is not below \"\(individual.label)\" on any column (mean accuracy over seeds)."
            : "**MTL is below \"\(individual.label)\"** (mean accuracy over seeds) on: " + below.joined(separator: ", ") + " — the \"upper bound\" is not one here."
    }

    /// Paired bootstrap intervals of the comparisons, per column and for the mean over columns.
    func bootstrap(_ runs: [Report]) -> (Report.Section, [[String: Any]])? {
        guard let columnCount = runs.first?.items["regmean"]?.count else { return nil }
        let columns = runs[0].tables.first?.table.columns ?? []
        var rows: [(String, [PairedBootstrap.Interval])] = []
        var json: [[String: Any]] = []
        for c in comparisons {
            guard runs.allSatisfy({ $0.items[c.a] != nil && $0.items[c.b] != nil }) else { continue }
            func strata(_ only: Int?) -> [[PairedBootstrap.Stratum]] {
                runs.map { run in (0..<columnCount).filter { only == nil || $0 == only }.map { PairedBootstrap.Stratum(a: run.items[c.a]![$0], b: run.items[c.b]![$0]) } }
            }
            var intervals = (0..<columnCount).map { PairedBootstrap.interval(seeds: strata($0), resamples: 2000, seed: 1) }
            if columnCount > 1 { intervals.append(PairedBootstrap.interval(seeds: strata(nil), resamples: 2000, seed: 1)) }
            rows.append((c.name, intervals))
            json.append(["comparison": c.name, "columns": (columnCount > 1 ? columns + ["mean"] : columns),
                         "intervals": intervals.map { ["estimate": $0.estimate, "lower": $0.lower, "upper": $0.upper] }])
        }
        guard !rows.isEmpty else { return nil }
        let header = ["comparison"] + columns + (columnCount > 1 ? ["mean over columns"] : [])
        var lines = ["| " + header.joined(separator: " | ") + " |", "|---|" + String(repeating: "---:|", count: header.count - 1)]
        for (name, intervals) in rows {
            lines.append("| \(name) | " + intervals.map { i in
                String(format: "%+.1f [%+.1f, %+.1f]", 100 * i.estimate, 100 * i.lower, 100 * i.upper)
            }.joined(separator: " | ") + " |")
        }
        let caption = "Accuracy difference in percentage points, [2.5%, 97.5%] percentile interval of 2000 paired resamples (seed 1): test items drawn with replacement within each test set and each seed, the same draw for both models; the statistic averages over test sets (as the tables' mean) and over the \(runs.count) seed(s). Merged models are scored per item by the runner (predictions recorded in output/round-*/<method>/predictions/; with heads kept, on the model each agent assembles, in output/round-*/per-agent/<agent>/<method>/predictions/). An interval excluding 0 means the difference is not explained by the choice of test items" + (runs.count > 1 ? " (nor by seeds: each seed's items are resampled)." : ".")
        return (Report.Section(title: "Paired bootstrap: accuracy differences with 95% intervals", caption: caption,
                               markdown: lines.joined(separator: "\n") + "\n"), json)
    }
}
