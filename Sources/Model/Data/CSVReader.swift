// CSVReader: RFC 4180 records (quoted fields with commas, quotes and line breaks) with the line
// each starts on, pulled one at a time from a ByteStream, so a file of any size is read in
// memory bounded by its longest record.

import Foundation

struct CSVReader {
    struct Record {
        var fields: [String]
        /// 1-based physical line where the record starts (for error messages).
        var line: Int
    }

    private let stream: ByteStream
    private let file: String
    private let separator: UInt8
    private var line = 1          // physical line of the next byte
    private var started = false

    init(stream: ByteStream, file: String, separator: UInt8 = UInt8(ascii: ",")) {
        self.stream = stream
        self.file = file
        self.separator = separator
    }

    /// All records of `data` (see `next`).
    static func records(_ data: Data, file: String, separator: UInt8 = UInt8(ascii: ",")) throws -> [Record] {
        var reader = CSVReader(stream: ByteStream(data: data), file: file, separator: separator)
        var records: [Record] = []
        while let record = try reader.next() { records.append(record) }
        return records
    }

    /// The next record, or nil at the end. A field that starts with a double quote may hold
    /// separators, CR/LF and doubled quotes (""); records end at LF or CRLF; a leading UTF-8
    /// byte-order mark and blank lines are skipped. A quote inside an unquoted field is kept as
    /// text (lenient, as most writers expect). Works on UTF-8 bytes: the separators are ASCII,
    /// so no byte of a multi-byte character can be mistaken for one; a field that is not valid
    /// UTF-8 is refused with its line.
    mutating func next() throws -> Record? {
        let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        if !started {
            started = true
            if try stream.peek() == 0xEF, try stream.peek(1) == 0xBB, try stream.peek(2) == 0xBF { stream.advance(3) }
        }
        var fields: [String] = []
        var field: [UInt8] = []
        var recordLine = line
        var atFieldStart = true
        var recordHasContent = false

        /// Length of the line break at the current byte (2 for CRLF, 1 for LF, 0 otherwise).
        func lineBreak() throws -> Int {
            let b = try stream.peek()
            if b == lf { return 1 }
            if b == cr, try stream.peek(1) == lf { return 2 }
            return 0
        }
        func endField() throws {
            guard let text = String(validating: field, as: UTF8.self) else { throw DatasetError.invalidUTF8(file: file, line: recordLine) }
            fields.append(text)
            field.removeAll(keepingCapacity: true)
        }

        while let byte = try stream.peek() {
            if byte == quote && atFieldStart {
                let openedOn = line
                recordHasContent = true
                atFieldStart = false
                stream.advance()
                var closed = false
                while let b = try stream.peek() {
                    if b == quote {
                        if try stream.peek(1) == quote { field.append(quote); stream.advance(2); continue }
                        closed = true; stream.advance(); break
                    }
                    if b == lf { line += 1 }
                    field.append(b)
                    stream.advance()
                }
                guard closed else { throw DatasetError.unterminatedQuote(file: file, line: openedOn) }
                if let after = try stream.peek(), after != separator, try lineBreak() == 0 {
                    throw DatasetError.characterAfterClosingQuote(file: file, line: line)
                }
                continue
            }
            let breakLength = try lineBreak()
            if breakLength > 0 {
                stream.advance(breakLength)
                line += 1
                if recordHasContent {
                    try endField()
                    return Record(fields: fields, line: recordLine)
                }
                recordLine = line
                atFieldStart = true
                continue
            }
            recordHasContent = true
            if byte == separator {
                try endField()
                atFieldStart = true
            } else {
                field.append(byte)
                atFieldStart = false
            }
            stream.advance()
        }
        guard recordHasContent else { return nil }
        try endField()
        return Record(fields: fields, line: recordLine)
    }
}
