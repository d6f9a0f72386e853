// CSVReader: RFC 4180 records (quoted fields with commas, quotes and line breaks) with the line each starts on.

import Foundation

enum CSVReader {
    struct Record {
        var fields: [String]
        /// 1-based physical line where the record starts (for error messages).
        var line: Int
    }

    /// All records of `data`. A field that starts with a double quote may hold separators,
    /// CR/LF and doubled quotes (""); records end at LF or CRLF; a leading UTF-8 byte-order
    /// mark and blank lines are skipped. A quote inside an unquoted field is kept as text
    /// (lenient, as most writers expect). Works on UTF-8 bytes: the separators are ASCII, so
    /// no byte of a multi-byte character can be mistaken for one.
    static func records(_ data: Data, file: String, separator: UInt8 = UInt8(ascii: ",")) throws -> [Record] {
        let quote = UInt8(ascii: "\""), cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        let count = bytes.count

        var records: [Record] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var line = 1              // physical line of bytes[index]
        var recordLine = 1
        var atFieldStart = true
        var recordHasContent = false
        var index = 0

        /// Length of the line break at `i` (2 for CRLF, 1 for LF, 0 otherwise).
        func lineBreak(at i: Int) -> Int {
            if bytes[i] == lf { return 1 }
            if bytes[i] == cr && i + 1 < count && bytes[i + 1] == lf { return 2 }
            return 0
        }
        func endField() {
            fields.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
        }

        while index < count {
            let byte = bytes[index]
            if byte == quote && atFieldStart {
                let openedOn = line
                recordHasContent = true
                atFieldStart = false
                index += 1
                var closed = false
                while index < count {
                    let b = bytes[index]
                    if b == quote {
                        if index + 1 < count && bytes[index + 1] == quote { field.append(quote); index += 2; continue }
                        closed = true; index += 1; break
                    }
                    if b == lf { line += 1 }
                    field.append(b)
                    index += 1
                }
                guard closed else { throw DatasetError.unterminatedQuote(file: file, line: openedOn) }
                if index < count && bytes[index] != separator && lineBreak(at: index) == 0 {
                    throw DatasetError.characterAfterClosingQuote(file: file, line: line)
                }
                continue
            }
            let breakLength = lineBreak(at: index)
            if breakLength > 0 {
                if recordHasContent {
                    endField()
                    records.append(Record(fields: fields, line: recordLine))
                    fields.removeAll(keepingCapacity: true)
                }
                index += breakLength
                line += 1
                recordLine = line
                atFieldStart = true
                recordHasContent = false
                continue
            }
            recordHasContent = true
            if byte == separator {
                endField()
                atFieldStart = true
            } else {
                field.append(byte)
                atFieldStart = false
            }
            index += 1
        }
        if recordHasContent {
            endField()
            records.append(Record(fields: fields, line: recordLine))
        }
        return records
    }
}
