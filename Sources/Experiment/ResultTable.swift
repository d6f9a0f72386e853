// A results table laid out like the RegMean paper's: one row per method (grouped), one column
// per domain/task plus their mean; cells hold accuracy and macro-F1. Renders Markdown, JSON
// and a horizontal-bar SVG of the mean column.

import Foundation

/// Accuracy and macro-F1 of one model on one test set, in [0, 1]; over several seeds, their
/// means with the sample standard deviations across seeds.
public struct Score: Sendable, Equatable, Codable {
    public var accuracy: Double
    public var macroF1: Double
    public var accuracyStd: Double?
    public var macroF1Std: Double?
    public init(accuracy: Double, macroF1: Double, accuracyStd: Double? = nil, macroF1Std: Double? = nil) {
        self.accuracy = accuracy
        self.macroF1 = macroF1
        self.accuracyStd = accuracyStd
        self.macroF1Std = macroF1Std
    }

    /// The elementwise mean; nil when `scores` is empty.
    public static func mean(_ scores: [Score]) -> Score? {
        guard !scores.isEmpty else { return nil }
        let n = Double(scores.count)
        return Score(accuracy: scores.map(\.accuracy).reduce(0, +) / n, macroF1: scores.map(\.macroF1).reduce(0, +) / n)
    }
}

public struct ResultTable: Sendable, Codable {
    public struct Row: Sendable, Codable {
        public var label: String
        /// Rows are printed in groups separated by a rule (e.g. "individual", "merge", "reference").
        public var group: String
        /// One cell per column (nil: not applicable / not run).
        public var cells: [Score?]
        public var note: String?
        /// Over several seeds: the mean ± std of the per-seed row means (the std of a mean over
        /// columns is not a function of the columns' stds).
        public var seedMean: Score?
        public init(label: String, group: String, cells: [Score?], note: String? = nil) {
            self.label = label
            self.group = group
            self.cells = cells
            self.note = note
        }
        /// The mean over the columns, or nil unless every column has a value.
        public var mean: Score? {
            if let seedMean { return seedMean }
            let present = cells.compactMap { $0 }
            return present.count == cells.count ? Score.mean(present) : nil
        }
    }

    public var title: String
    public var columns: [String]
    public var rows: [Row] = []
    /// Whether to append a "mean" column (off for one-column tables).
    public var showMean: Bool

    public init(title: String, columns: [String], showMean: Bool? = nil) {
        self.title = title
        self.columns = columns
        self.showMean = showMean ?? (columns.count > 1)
    }

    public mutating func add(_ label: String, group: String, cells: [Score?], note: String? = nil) {
        precondition(cells.count == columns.count, "row \(label): \(cells.count) cells for \(columns.count) columns")
        rows.append(Row(label: label, group: group, cells: cells, note: note))
    }

    static func cell(_ s: Score?) -> String {
        guard let s else { return "—" }
        func part(_ v: Double, _ std: Double?) -> String {
            String(format: "%.1f", 100 * v) + (std.map { String(format: " ± %.1f", 100 * $0) } ?? "")
        }
        return part(s.accuracy, s.accuracyStd) + " / " + part(s.macroF1, s.macroF1Std)
    }

    /// A Markdown table; cells are "accuracy / macro-F1" in percent (each "mean ± std" over seeds).
    public func markdown() -> String {
        var header = ["method"] + columns
        if showMean { header.append("mean") }
        var lines = ["| " + header.joined(separator: " | ") + " |",
                     "|---|" + String(repeating: "---:|", count: header.count - 1)]
        var lastGroup: String?
        for row in rows {
            if let lastGroup, lastGroup != row.group {
                lines.append("| *" + row.group + "* |" + String(repeating: " |", count: header.count - 1))
            }
            lastGroup = row.group
            var cells = [row.label + (row.note.map { " (\($0))" } ?? "")] + row.cells.map(Self.cell)
            if showMean { cells.append(Self.cell(row.mean)) }
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The value a row is charted by: its mean (or its only cell), as macro-F1.
    func chartValue(_ row: Row) -> Double? {
        (showMean ? row.mean : row.cells.first ?? nil)?.macroF1
    }

    /// Horizontal bars of each row's macro-F1 (mean column when present).
    public func svg() -> String {
        let bars = rows.map { ($0.label, chartValue($0)) }
        let width = 760.0, rowHeight = 22.0, left = 300.0, top = 34.0
        let height = top + rowHeight * Double(bars.count) + 20
        let colors = ["individual": "#999999", "reference": "#6a9955", "merge": "#3b7dd8"]
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<text x=\"10\" y=\"20\" font-size=\"14\">\(escape(title)) — macro-F1 (%)\(showMean ? ", mean over columns" : "")</text>\n"
        for (i, (label, value)) in bars.enumerated() {
            let y = top + rowHeight * Double(i)
            let w = max(0, min(1, value ?? 0)) * (width - left - 60)
            let color = colors[rows[i].group] ?? "#3b7dd8"
            out += "<text x=\"\(Int(left - 8))\" y=\"\(Int(y + 15))\" text-anchor=\"end\">\(escape(label))</text>\n"
            out += "<rect x=\"\(Int(left))\" y=\"\(Int(y + 3))\" width=\"\(String(format: "%.1f", w))\" height=\"15\" fill=\"\(color)\"/>\n"
            out += "<text x=\"\(String(format: "%.1f", left + w + 4))\" y=\"\(Int(y + 15))\">\(value.map { String(format: "%.1f", 100 * $0) } ?? "n/a")</text>\n"
        }
        return out + "</svg>\n"
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
