// DatasetFiles: reading and writing labelled text as CSV (header row, RFC 4180) or JSONL (one object per line).

import Foundation
import AtomicIO

public enum DataFormat: String, Sendable, CaseIterable {
    case csv, jsonl

    /// .csv → csv; .jsonl / .ndjson / .json → jsonl.
    public init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "csv": self = .csv
        case "jsonl", "ndjson", "json": self = .jsonl
        default: return nil
        }
    }
}

extension LabeledDataset {
    /// Loads `path`. CSV: a header row naming the columns, then one example per record.
    /// JSONL: one object per line; the label is a string or a non-negative integer, and a
    /// JSON array of them (under `labelField`, or under "labels" when `labelField` is absent)
    /// makes the dataset multi-label. String labels are mapped through `labelNames` when
    /// given (an integer string that is no name is taken as an index), otherwise the sorted
    /// unique names become the label names; when every label is an integer and no names are
    /// given, the names are "0" … "max".
    public static func load(path: String, format: DataFormat? = nil, textField: String = "text",
                            labelField: String = "label", labelNames: [String]? = nil) throws -> LabeledDataset {
        let ext = (path as NSString).pathExtension
        guard let format = format ?? DataFormat(pathExtension: ext) else { throw DatasetError.unknownFormat(file: path) }
        let data = try readFile(path)
        let raw: [RawExample]
        switch format {
        case .csv: raw = try csvExamples(data, file: path, textField: textField, labelField: labelField)
        case .jsonl: raw = try jsonlExamples(data, file: path, textField: textField, labelField: labelField)
        }
        guard !raw.isEmpty else { throw DatasetError.empty(file: path) }
        return try resolve(raw, file: path, labelField: labelField, labelNames: labelNames)
    }

    /// Writes the dataset atomically (temporary name, fsync, rename) with label names, not
    /// indices: JSONL `{"text": …, "label": "name"}` (or `"labels": [names]`), or CSV with
    /// the header `text,label` (single-label only).
    public func write(to path: String, format: DataFormat? = nil) throws {
        let ext = (path as NSString).pathExtension
        guard let format = format ?? DataFormat(pathExtension: ext) else { throw DatasetError.unknownFormat(file: path) }
        var out = ""
        switch format {
        case .csv:
            guard !isMultiLabel else { throw DatasetError.writeFailed(file: path, reason: "CSV holds single-label data only; use .jsonl") }
            out = "text,label\n"
            for example in examples {
                out += Self.csvField(example.text) + "," + Self.csvField(labelNames[example.labels[0]]) + "\n"
            }
        case .jsonl:
            for example in examples {
                let object: [String: Any] = isMultiLabel
                    ? ["text": example.text, "labels": example.labels.map { labelNames[$0] }]
                    : ["text": example.text, "label": labelNames[example.labels[0]]]
                let line = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                out += String(decoding: line, as: UTF8.self) + "\n"
            }
        }
        do {
            try AtomicFile.write(Data(out.utf8), to: path)
        } catch let error as AtomicFileError {
            throw DatasetError.writeFailed(file: path, reason: error.description)
        }
    }

    /// Label names from a labels.txt (one per line, in index order; blank lines ignored), as
    /// `fedmerge data prepare` writes next to the parts.
    public static func labelNames(fromFile path: String) throws -> [String] {
        let text = String(decoding: try readFile(path), as: UTF8.self)
        let names = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw DatasetError.empty(file: path) }
        return names
    }

    // MARK: parsing

    /// A label as written in the file, before names are resolved.
    enum RawLabel { case name(String), index(Int) }
    struct RawExample { var text: String; var labels: [RawLabel]; var isList: Bool; var line: Int }

    static func readFile(_ path: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw DatasetError.unreadable(file: path, reason: "no such file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError.unreadable(file: path, reason: "not readable") }
        return data
    }

    private static func csvExamples(_ data: Data, file: String, textField: String, labelField: String) throws -> [RawExample] {
        let records = try CSVReader.records(data, file: file)
        guard let header = records.first else { return [] }
        guard let textColumn = header.fields.firstIndex(of: textField) else {
            throw DatasetError.missingColumn(file: file, column: textField, available: header.fields)
        }
        guard let labelColumn = header.fields.firstIndex(of: labelField) else {
            throw DatasetError.missingColumn(file: file, column: labelField, available: header.fields)
        }
        return try records.dropFirst().map { record in
            guard record.fields.count == header.fields.count else {
                throw DatasetError.fieldCount(file: file, line: record.line, expected: header.fields.count, actual: record.fields.count)
            }
            let label = record.fields[labelColumn]
            guard !label.isEmpty else { throw DatasetError.missingField(file: file, line: record.line, field: labelField) }
            return RawExample(text: record.fields[textColumn], labels: [.name(label)], isList: false, line: record.line)
        }
    }

    private static func jsonlExamples(_ data: Data, file: String, textField: String, labelField: String) throws -> [RawExample] {
        var examples: [RawExample] = []
        for (offset, lineBytes) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let line = offset + 1
            if lineBytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let (object, text) = try jsonLine(lineBytes, file: file, line: line, textField: textField)
            let field = object[labelField] != nil || object["labels"] == nil ? labelField : "labels"
            guard let labelValue = object[field] else { throw DatasetError.missingField(file: file, line: line, field: labelField) }
            func label(_ value: Any) throws -> RawLabel { try rawLabel(value, file: file, line: line, field: field) }
            if let list = labelValue as? [Any] {
                examples.append(RawExample(text: text, labels: try list.map(label), isList: true, line: line))
            } else {
                examples.append(RawExample(text: text, labels: [try label(labelValue)], isList: false, line: line))
            }
        }
        return examples
    }

    /// Maps raw labels to indices and decides the label names (see `load`).
    static func resolve(_ raw: [RawExample], file: String, labelField: String, labelNames given: [String]?) throws -> LabeledDataset {
        let isMultiLabel = raw.contains { $0.isList }
        var names: [String]
        if let given {
            names = given
        } else {
            let allIndices = raw.allSatisfy { $0.labels.allSatisfy {
                switch $0 { case .index: return true
                case .name(let s): return Int(s).map { $0 >= 0 } ?? false } } }
            if allIndices {
                let maxIndex = raw.flatMap { $0.labels.map { label -> Int in
                    switch label { case .index(let i): return i
                    case .name(let s): return Int(s)! } } }.max() ?? -1
                names = (0...max(0, maxIndex)).map(String.init)
            } else {
                var unique = Set<String>()
                for example in raw { for label in example.labels {
                    switch label { case .index(let i): unique.insert(String(i))
                    case .name(let s): unique.insert(s) } } }
                names = unique.sorted()
            }
        }
        let indexByName = indexByName(names)
        let examples = try raw.map { example -> LabeledExample in
            let labels = try example.labels.map {
                try labelIndex($0, names: names, indexByName: indexByName, file: file, line: example.line, field: labelField)
            }
            return LabeledExample(text: example.text, labels: labels)
        }
        return LabeledDataset(examples: examples, labelNames: names, isMultiLabel: isMultiLabel)
    }

    /// One JSONL line as an object and its text field (a string); anything else, invalid
    /// UTF-8 included, is an error at `file`:`line`.
    static func jsonLine(_ bytes: some Collection<UInt8>, file: String, line: Int, textField: String) throws -> (object: [String: Any], text: String) {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw DatasetError.invalidUTF8(file: file, line: line) }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) }
        catch { throw DatasetError.invalidJSON(file: file, line: line, reason: "\(error.localizedDescription)") }
        guard let object = parsed as? [String: Any] else {
            throw DatasetError.invalidJSON(file: file, line: line, reason: "the line is JSON but not an object")
        }
        guard let value = object[textField] else { throw DatasetError.missingField(file: file, line: line, field: textField) }
        guard let text = value as? String else {
            throw DatasetError.wrongFieldType(file: file, line: line, field: textField, expected: "a string")
        }
        return (object, text)
    }

    /// A JSON label value: a string, or a non-negative integer.
    static func rawLabel(_ value: Any, file: String, line: Int, field: String) throws -> RawLabel {
        if let name = value as? String { return .name(name) }
        // JSON true/false arrive as NSNumber too and read as 1/0 (Linux Foundation cannot tell them from 1/0).
        if let number = value as? NSNumber, let index = Int(exactly: number.doubleValue), index >= 0 {
            return .index(index)
        }
        throw DatasetError.wrongFieldType(file: file, line: line, field: field,
                                          expected: "a label name (string), a non-negative integer, or an array of them")
    }

    /// The index of a label written as `text` (a name, or an index below names.count) at
    /// `file`:`line`; an unknown label is a DatasetError.unknownLabel naming both.
    public static func labelIndex(of text: String, names: [String], file: String, line: Int, field: String) throws -> Int {
        try labelIndex(.name(text), names: names, indexByName: indexByName(names), file: file, line: line, field: field)
    }

    static func indexByName(_ names: [String]) -> [String: Int] {
        Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The index of a label among `names`: a name, or an integer (or integer string that is no
    /// name) below names.count; anything else is an unknown label at `file`:`line`.
    static func labelIndex(_ label: RawLabel, names: [String], indexByName: [String: Int],
                           file: String, line: Int, field: String) throws -> Int {
        switch label {
        case .name(let name):
            if let index = indexByName[name] { return index }
            if let index = Int(name), index >= 0, index < names.count { return index }
            throw DatasetError.unknownLabel(file: file, line: line, field: field, value: name, known: names)
        case .index(let index):
            guard index < names.count else {
                throw DatasetError.unknownLabel(file: file, line: line, field: field, value: String(index), known: names)
            }
            return index
        }
    }

    static func csvField(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
