// The round's report: report.json (machine-readable, everything), report.md (a methods ×
// agents table with each agent's own model as the baseline row) and report.svg (a bar chart).

import AtomicIO
import Foundation
import Merge
import Protocol
import SafeTensors

public struct RoundReport: Sendable {
    public let definition: MergeDefinition
    public let baseModel: String
    public let merged: [String]
    public let absent: [String]
    public let evaluations: [String: [String: [String: Double]]]
    public let outcomes: [MergeRunner.Outcome]
    public let missingEvaluations: [String]
    /// Agents whose contribution failed the plausibility checks, with the reasons.
    public var quarantined: [String: [String]] = [:]
    /// Evaluations an agent reported as failed: agent → method → reason.
    public var failedEvaluations: [String: [String: String]] = [:]
    /// How each agent's upload went on the wire (this aggregator process's view).
    public var uploads: [String: UploadTiming] = [:]
    /// A secure merge's summary (secure.json: the sums formed, fixed-point scales, bytes per agent).
    public var secure: Data?

    /// Rows of the table: the agents' own models, then each method in config order.
    var rows: [(label: String, title: String)] {
        [(ReservedLabel.local, "own model (baseline)")] + definition.methods.map { ($0.label, $0.label + " (\($0.choice.name))") }
    }

    static let metrics = ["accuracy", "macro_f1"]

    public func write(to directory: String) throws {
        try AtomicFile.write(try jsonData(), to: directory + "/report.json")
        try AtomicFile.write(Data(markdown().utf8), to: directory + "/report.md")
        try AtomicFile.write(Data(svg().utf8), to: directory + "/report.svg")
    }

    func mean(_ label: String, _ metric: String) -> Double? {
        let values = merged.compactMap { evaluations[$0]?[label]?[metric] }
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    public func jsonData() throws -> Data {
        var methods: [[String: Any]] = []
        for entry in definition.methods {
            var m: [String: Any] = ["label": entry.label, "merge_method": entry.choice.name,
                                    "parameters": entry.choice.rawParameters.mapValues { $0.description }]
            if let outcome = outcomes.first(where: { $0.label == entry.label }) {
                m["seconds"] = outcome.seconds
                m["tensor_rules"] = outcome.report.totals
                m["solve_paths"] = Dictionary(grouping: outcome.report.tensors.compactMap(\.solvePath), by: { $0 }).mapValues(\.count)
            }
            methods.append(m)
        }
        var means: [String: [String: Double]] = [:]
        for (label, _) in rows {
            for metric in Self.metrics { if let v = mean(label, metric) { means[label, default: [:]][metric] = v } }
        }
        var object: [String: Any] = [
            "secure": definition.secure,
            "round": definition.id, "merge": definition.name, "base_model": baseModel, "subset": definition.subset,
            "merged_agents": merged, "absent_agents": absent, "missing_evaluations": missingEvaluations,
            "quarantined_agents": quarantined, "failed_evaluations": failedEvaluations,
            "methods": methods, "evaluations": evaluations, "mean_over_agents": means,
            "uploads": uploads.mapValues(\.json),
        ]
        if let secure, let summary = try? JSONSerialization.jsonObject(with: secure) { object["secure_summation"] = summary }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    public func markdown() -> String {
        func cell(_ value: [String: Double]?) -> String {
            guard let value, let acc = value["accuracy"] else { return "—" }
            let f1 = value["macro_f1"].map { String(format: " / %.3f", $0) } ?? ""
            return String(format: "%.3f", acc) + f1
        }
        var lines = ["# FedMerge merge \(definition.name) (round \(definition.id))", ""]
        lines.append("Merged agents: \(merged.joined(separator: ", "))" + (absent.isEmpty ? "" : "; absent at the deadline: \(absent.joined(separator: ", "))") + ".")
        if definition.secure {
            var text = "Secure merge: the aggregator held only masked uploads and their sums."
            if let secure, let summary = try? JSONSerialization.jsonObject(with: secure) as? [String: Any],
               let heads = summary["heads_sent_in_clear"] as? [String: [String]], !heads.isEmpty {
                text += " Heads kept per agent (heads: keep) were sent in the clear: "
                    + heads.keys.sorted().map { "\($0): \(heads[$0]!.joined(separator: ", "))" }.joined(separator: "; ") + "."
            }
            lines.append(text)
        }
        lines.append("Each agent evaluates every model on its own local test split. Cells: accuracy / macro-F1.")
        lines.append("")
        lines.append("| model | " + merged.joined(separator: " | ") + " | mean |")
        lines.append("|---|" + merged.map { _ in "---:|" }.joined() + "---:|")
        for (label, title) in rows {
            let cells = merged.map { cell(evaluations[$0]?[label]) }
            let meanCell = cell(mean(label, "accuracy").map { acc in ["accuracy": acc].merging(mean(label, "macro_f1").map { ["macro_f1": $0] } ?? [:]) { a, _ in a } })
            lines.append("| \(title) | " + cells.joined(separator: " | ") + " | \(meanCell) |")
        }
        for agent in quarantined.keys.sorted() {
            lines.append("")
            lines.append("Quarantined (not merged): \(agent): \(quarantined[agent]!.joined(separator: "; ")).")
        }
        for agent in failedEvaluations.keys.sorted() {
            for (method, reason) in failedEvaluations[agent]!.sorted(by: { $0.key < $1.key }) {
                lines.append("")
                lines.append("Evaluation failed at \(agent) for \(method): \(reason)")
            }
        }
        if !missingEvaluations.isEmpty {
            lines.append("")
            lines.append("No complete evaluation from: \(missingEvaluations.joined(separator: ", ")) (eval_timeout).")
        }
        if !uploads.isEmpty {
            lines.append("")
            lines.append("| agent | upload payload bytes | links | admission → committed (s) | first chunk → committed (s) |")
            lines.append("|---|---:|---:|---:|---:|")
            for agent in uploads.keys.sorted() {
                let u = uploads[agent]!
                let seconds = [u.seconds, u.transferSeconds].map { $0.map { String(format: "%.2f", $0) } ?? "—" }
                lines.append("| \(agent) | \(u.payloadBytes) | \(u.links) | \(seconds[0]) | \(seconds[1]) |")
            }
        }
        lines.append("")
        lines.append("| method | merge time (s) | tensors by rule | solve paths |")
        lines.append("|---|---:|---|---|")
        for entry in definition.methods {
            guard let o = outcomes.first(where: { $0.label == entry.label }) else {
                lines.append("| \(entry.label) | — | (merged before a restart) | |"); continue
            }
            let rules = o.report.totals.keys.sorted().map { "\($0) \(o.report.totals[$0]!)" }.joined(separator: ", ")
            let paths = Dictionary(grouping: o.report.tensors.compactMap(\.solvePath), by: { $0 }).mapValues(\.count)
            lines.append("| \(entry.label) | \(String(format: "%.2f", o.seconds)) | \(rules) | \(paths.keys.sorted().map { "\($0) \(paths[$0]!)" }.joined(separator: ", ")) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Mean accuracy per model over the merged agents, as horizontal bars.
    public func svg() -> String {
        let bars = rows.map { ($0.title, mean($0.label, "accuracy") ?? 0) }
        let width = 640.0, rowHeight = 26.0, left = 230.0, top = 30.0
        let height = top + rowHeight * Double(bars.count) + 30
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<text x=\"10\" y=\"18\" font-size=\"14\">Merge \(definition.name): mean accuracy over agents' local test splits</text>\n"
        for (i, (title, value)) in bars.enumerated() {
            let y = top + rowHeight * Double(i)
            let w = max(0, min(1, value)) * (width - left - 60)
            out += "<text x=\"\(Int(left - 8))\" y=\"\(Int(y + 16))\" text-anchor=\"end\">\(escape(title))</text>\n"
            out += "<rect x=\"\(Int(left))\" y=\"\(Int(y + 4))\" width=\"\(String(format: "%.1f", w))\" height=\"16\" fill=\"\(i == 0 ? "#999" : "#3b7dd8")\"/>\n"
            out += "<text x=\"\(String(format: "%.1f", left + w + 4))\" y=\"\(Int(y + 16))\">\(String(format: "%.3f", value))</text>\n"
        }
        return out + "</svg>\n"
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
