// DatasetError: what can be wrong with a labelled-text file; every case names the file and, where known, line and field.

public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case unknownFormat(file: String)
    case empty(file: String)
    case missingColumn(file: String, column: String, available: [String])
    case fieldCount(file: String, line: Int, expected: Int, actual: Int)
    case unterminatedQuote(file: String, line: Int)
    case characterAfterClosingQuote(file: String, line: Int)
    case invalidJSON(file: String, line: Int, reason: String)
    case missingField(file: String, line: Int, field: String)
    case wrongFieldType(file: String, line: Int, field: String, expected: String)
    case unknownLabel(file: String, line: Int, field: String, value: String, known: [String])
    case malformedRow(file: String, line: Int, reason: String)
    case writeFailed(file: String, reason: String)
    case invalidUTF8(file: String, line: Int)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            return "cannot read data file \(file): \(reason)"
        case .unknownFormat(let file):
            return "\(file): cannot tell the data format from the extension (use .csv or .jsonl, or name the format)"
        case .empty(let file):
            return "\(file): no examples"
        case .missingColumn(let file, let column, let available):
            return "\(file): no column \"\(column)\" in the header (columns: \(available.joined(separator: ", ")))"
        case .fieldCount(let file, let line, let expected, let actual):
            return "\(file):\(line): \(actual) fields, the header has \(expected)"
        case .unterminatedQuote(let file, let line):
            return "\(file):\(line): quoted field never closed"
        case .characterAfterClosingQuote(let file, let line):
            return "\(file):\(line): text after a closing quote (inside a quoted field write a quote as \"\")"
        case .invalidJSON(let file, let line, let reason):
            return "\(file):\(line): not a JSON object: \(reason)"
        case .missingField(let file, let line, let field):
            return "\(file):\(line): field \"\(field)\" missing"
        case .wrongFieldType(let file, let line, let field, let expected):
            return "\(file):\(line): field \"\(field)\" should be \(expected)"
        case .unknownLabel(let file, let line, let field, let value, let known):
            return "\(file):\(line): field \"\(field)\": label \"\(value)\" is not one of [\(known.joined(separator: ", "))]"
        case .malformedRow(let file, let line, let reason):
            return "\(file):\(line): \(reason)"
        case .writeFailed(let file, let reason):
            return "cannot write \(file): \(reason)"
        case .invalidUTF8(let file, let line):
            return "\(file):\(line): not valid UTF-8 text (convert the file to UTF-8, e.g. with iconv)"
        }
    }
}
