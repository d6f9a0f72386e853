// TextRecordReader: the texts of an input file (or stdin), one record at a time, with the line
// each came from — plain text (one per line), CSV with a text column, or JSONL with a text
// field — and, when asked, each record's labels resolved against a model's label names.
// What `predict` and `evaluate` read; memory is bounded by the longest record, not the file.

import Foundation

/// The layout of an input of texts.
public enum TextFormat: String, Sendable, CaseIterable {
    case text, csv, jsonl

    /// .csv → csv; .jsonl / .ndjson / .json → jsonl; anything else (and stdin) → plain text.
    public init(path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "csv": self = .csv
        case "jsonl", "ndjson", "json": self = .jsonl
        default: self = .text
        }
    }
}

/// One text of the input: its 1-based line, the text, and its label indices when labels were read.
public struct TextRecord: Sendable, Equatable {
    public let line: Int
    public let text: String
    public let labels: [Int]?
}

public final class TextRecordReader {
    /// The input's name in error messages ("stdin" for `-`).
    public let file: String
    public let format: TextFormat
    private let stream: ByteStream
    private let handle: FileHandle
    private let textField: String
    private let labelField: String?
    private let labelNames: [String]
    private var csv: CSVReader?
    private var csvColumns: (text: Int, label: Int?, count: Int)?
    private var lineNumber = 0

    /// Opens `path` (`-` reads stdin). With `labelField`, every record must carry a label (CSV
    /// column or JSONL field; a JSONL array makes several), resolved against `labelNames`: a
    /// name, or an index 0..<labelNames.count written as an integer.
    public init(path: String, format: TextFormat? = nil, textField: String = "text",
                labelField: String? = nil, labelNames: [String] = []) throws {
        if path == "-" {
            file = "stdin"
            handle = FileHandle.standardInput
        } else {
            guard FileManager.default.fileExists(atPath: path) else { throw DatasetError.unreadable(file: path, reason: "no such file") }
            guard let h = FileHandle(forReadingAtPath: path) else { throw DatasetError.unreadable(file: path, reason: "not readable") }
            file = path
            handle = h
        }
        self.format = format ?? (path == "-" ? .text : TextFormat(path: path))
        precondition(labelField == nil || self.format != .text, "plain text carries no labels")
        stream = ByteStream(handle: handle)
        self.textField = textField
        self.labelField = labelField
        self.labelNames = labelNames
        if self.format == .csv { csv = CSVReader(stream: stream, file: file) }
    }

    deinit { if file != "stdin" { try? handle.close() } }

    /// The next record, or nil at the end of the input. Blank lines are skipped.
    public func next() throws -> TextRecord? {
        switch format {
        case .text:
            while let bytes = try stream.nextLine() {
                lineNumber += 1
                if isBlank(bytes) { continue }
                guard let text = String(validating: bytes, as: UTF8.self) else { throw DatasetError.invalidUTF8(file: file, line: lineNumber) }
                return TextRecord(line: lineNumber, text: text, labels: nil)
            }
            return nil
        case .csv:
            return try nextCSV()
        case .jsonl:
            while let bytes = try stream.nextLine() {
                lineNumber += 1
                if isBlank(bytes) { continue }
                return try jsonRecord(bytes, line: lineNumber)
            }
            return nil
        }
    }

    private func isBlank(_ bytes: [UInt8]) -> Bool { bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D } }

    private func nextCSV() throws -> TextRecord? {
        if csvColumns == nil {
            guard let header = try csv!.next() else { return nil }
            guard let text = header.fields.firstIndex(of: textField) else {
                throw DatasetError.missingColumn(file: file, column: textField, available: header.fields)
            }
            var label: Int?
            if let labelField {
                guard let l = header.fields.firstIndex(of: labelField) else {
                    throw DatasetError.missingColumn(file: file, column: labelField, available: header.fields)
                }
                label = l
            }
            csvColumns = (text, label, header.fields.count)
        }
        guard let record = try csv!.next(), let columns = csvColumns else { return nil }
        guard record.fields.count == columns.count else {
            throw DatasetError.fieldCount(file: file, line: record.line, expected: columns.count, actual: record.fields.count)
        }
        var labels: [Int]?
        if let l = columns.label {
            guard !record.fields[l].isEmpty else { throw DatasetError.missingField(file: file, line: record.line, field: labelField!) }
            labels = [try resolve(.name(record.fields[l]), line: record.line)]
        }
        return TextRecord(line: record.line, text: record.fields[columns.text], labels: labels)
    }

    private func jsonRecord(_ bytes: [UInt8], line: Int) throws -> TextRecord {
        let (object, text) = try LabeledDataset.jsonLine(bytes, file: file, line: line, textField: textField)
        guard let labelField else { return TextRecord(line: line, text: text, labels: nil) }
        guard let labelValue = object[labelField] else { throw DatasetError.missingField(file: file, line: line, field: labelField) }
        let raw = try (labelValue as? [Any] ?? [labelValue]).map { try LabeledDataset.rawLabel($0, file: file, line: line, field: labelField) }
        return TextRecord(line: line, text: text, labels: try raw.map { try resolve($0, line: line) })
    }

    private func resolve(_ label: LabeledDataset.RawLabel, line: Int) throws -> Int {
        try LabeledDataset.labelIndex(label, names: labelNames, indexByName: indexByName, file: file, line: line, field: labelField!)
    }

    private lazy var indexByName = LabeledDataset.indexByName(labelNames)
}
