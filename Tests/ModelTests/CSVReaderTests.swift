// Tests for CSVReader: RFC 4180 quoting, line breaks inside fields, and the line each record starts on.

import Foundation
import XCTest
@testable import Model

final class CSVReaderTests: XCTestCase {
    func records(_ text: String) throws -> [CSVReader.Record] {
        try CSVReader.records(Data(text.utf8), file: "test.csv")
    }

    func testQuotedFieldsHoldCommasQuotesAndLineBreaks() throws {
        let path = FixturePaths.fixture("data", "sample.csv")
        let result = try CSVReader.records(try Data(contentsOf: URL(fileURLWithPath: path)), file: path)
        XCTAssertEqual(result.map(\.fields), [
            ["id", "text", "label"],
            ["1", "plain text", "pos"],
            ["2", "with, a comma", "neg"],
            ["3", "she said \"hi\"", "pos"],
            ["4", "two\r\nlines", "neutral"],
            ["5", "café ünïcode", "neg"],
        ])
        // Record 4 spans lines 5–6, line 7 is blank, so record 5 starts on line 8.
        XCTAssertEqual(result.map(\.line), [1, 2, 3, 4, 5, 8])
    }

    func testEmptyFieldsAndMissingFinalNewline() throws {
        XCTAssertEqual(try records("a,,\"\"\n,b,").map(\.fields), [["a", "", ""], ["", "b", ""]])
    }

    func testByteOrderMarkIsSkipped() throws {
        XCTAssertEqual(try records("\u{FEFF}text,label\nx,y\n").map(\.fields), [["text", "label"], ["x", "y"]])
    }

    func testUnterminatedQuoteNamesTheLineItOpened() {
        XCTAssertThrowsError(try records("text,label\nok,1\n\"never closed,1\nmore\n")) { error in
            XCTAssertEqual(error as? DatasetError, .unterminatedQuote(file: "test.csv", line: 3))
        }
    }

    func testTextAfterClosingQuoteIsRejected() {
        XCTAssertThrowsError(try records("text,label\n\"a\"b,1\n")) { error in
            XCTAssertEqual(error as? DatasetError, .characterAfterClosingQuote(file: "test.csv", line: 2))
        }
    }

    func testStreamedRecordsAcrossReadBlocksEqualTheWholeFileParse() throws {
        // Records with quoted line breaks and CRLF, more than two read blocks long, so records
        // and CRLF pairs straddle block boundaries.
        var text = "text,label\r\n"
        var i = 0
        while text.utf8.count < 2 * ByteStream.blockSize + 1000 {
            text += i % 7 == 0 ? "\"line \(i)\r\nstill \"\"\(i)\"\"\",x\r\n" : "plain text number \(i),y\n"
            i += 1
        }
        let path = try FixturePaths.temporaryFile(named: "big.csv", contents: text)
        let whole = try CSVReader.records(Data(text.utf8), file: path)
        var streamed: [CSVReader.Record] = []
        var reader = CSVReader(stream: ByteStream(handle: FileHandle(forReadingAtPath: path)!), file: path)
        while let r = try reader.next() { streamed.append(r) }
        XCTAssertEqual(streamed.count, i + 1)
        XCTAssertEqual(streamed.map(\.fields), whole.map(\.fields))
        XCTAssertEqual(streamed.map(\.line), whole.map(\.line))
    }

    func testInvalidUTF8IsRefusedWithItsLine() throws {
        XCTAssertThrowsError(try CSVReader.records(Data("a,b\nok,1\n".utf8 + [0xC3, 0x28] + ",2\n".utf8), file: "x.csv")) { error in
            XCTAssertEqual(error as? DatasetError, .invalidUTF8(file: "x.csv", line: 3))
        }
    }
}
