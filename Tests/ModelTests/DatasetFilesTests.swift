// Tests for DatasetFiles: loading CSV/JSONL into LabeledDataset (label mapping, multi-label), errors, and writing.

import Foundation
import XCTest
@testable import Model

final class DatasetFilesTests: XCTestCase {
    func testCSVWithStringLabelsUsesSortedNames() throws {
        let data = try LabeledDataset.load(path: FixturePaths.fixture("data", "sample.csv"))
        XCTAssertEqual(data.labelNames, ["neg", "neutral", "pos"])
        XCTAssertEqual(data.texts, ["plain text", "with, a comma", "she said \"hi\"", "two\r\nlines", "café ünïcode"])
        XCTAssertEqual(data.singleLabels, [2, 0, 2, 1, 0])
        XCTAssertEqual(data.labelCounts(), [2, 1, 2])
        XCTAssertFalse(data.isMultiLabel)
    }

    func testGivenLabelNamesFixTheOrder() throws {
        let data = try LabeledDataset.load(path: FixturePaths.fixture("data", "sample.csv"),
                                           labelNames: ["pos", "neg", "neutral"])
        XCTAssertEqual(data.singleLabels, [0, 1, 0, 2, 1])
    }

    func testUnknownLabelNamesFileLineFieldAndValue() throws {
        let path = FixturePaths.fixture("data", "sample.csv")
        XCTAssertThrowsError(try LabeledDataset.load(path: path, labelNames: ["neg", "pos"])) { error in
            XCTAssertEqual(error as? DatasetError,
                           .unknownLabel(file: path, line: 5, field: "label", value: "neutral", known: ["neg", "pos"]))
            XCTAssertTrue("\(error)".contains("sample.csv:5"), "\(error)")
        }
    }

    func testJSONLSkipsBlankLinesAndIgnoresExtraKeys() throws {
        let data = try LabeledDataset.load(path: FixturePaths.fixture("data", "sample.jsonl"))
        XCTAssertEqual(data.labelNames, ["ham", "spam"])
        XCTAssertEqual(data.texts, ["first", "second", "third \"quoted\"", "fourth"])
        XCTAssertEqual(data.singleLabels, [1, 0, 1, 0])
    }

    func testIntegerLabelsAreIndicesUpToTheLargest() throws {
        let data = try LabeledDataset.load(path: FixturePaths.fixture("data", "integer_labels.jsonl"))
        XCTAssertEqual(data.labelNames, ["0", "1", "2"])
        XCTAssertEqual(data.singleLabels, [2, 0, 2])
        XCTAssertEqual(data.labelCounts(), [1, 0, 2])
    }

    func testLabelsArrayMakesMultiLabelDataset() throws {
        let data = try LabeledDataset.load(path: FixturePaths.fixture("data", "multilabel.jsonl"))
        XCTAssertTrue(data.isMultiLabel)
        XCTAssertEqual(data.labelNames, ["earn", "grain", "ship"])
        XCTAssertEqual(data.examples.map(\.labels), [[1, 2], [0], [], [2]])
        XCTAssertEqual(data.labelCounts(), [1, 1, 2])
    }

    func testCustomFieldNames() throws {
        let path = try FixturePaths.temporaryFile(named: "d.csv", contents: "body,category\nhello,b\nbye,a\n")
        let data = try LabeledDataset.load(path: path, textField: "body", labelField: "category")
        XCTAssertEqual(data.texts, ["hello", "bye"])
        XCTAssertEqual(data.singleLabels, [1, 0])
    }

    func testMissingColumnListsTheColumnsThereAre() throws {
        let path = try FixturePaths.temporaryFile(named: "d.csv", contents: "body,label\nhello,1\n")
        XCTAssertThrowsError(try LabeledDataset.load(path: path)) { error in
            XCTAssertEqual(error as? DatasetError, .missingColumn(file: path, column: "text", available: ["body", "label"]))
        }
    }

    func testRowWithTooManyFieldsNamesTheLine() throws {
        let path = try FixturePaths.temporaryFile(named: "d.csv", contents: "text,label\na,1\nb,1,extra\n")
        XCTAssertThrowsError(try LabeledDataset.load(path: path)) { error in
            XCTAssertEqual(error as? DatasetError, .fieldCount(file: path, line: 3, expected: 2, actual: 3))
        }
    }

    func testBadJSONLinesNameTheLineAndField() throws {
        let broken = try FixturePaths.temporaryFile(named: "d.jsonl", contents: "{\"text\": \"a\", \"label\": 1}\n{not json\n")
        XCTAssertThrowsError(try LabeledDataset.load(path: broken)) { error in
            guard case .invalidJSON(let file, let line, _)? = error as? DatasetError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, broken); XCTAssertEqual(line, 2)
        }
        let noText = try FixturePaths.temporaryFile(named: "d.jsonl", contents: "{\"body\": \"a\", \"label\": 1}\n")
        XCTAssertThrowsError(try LabeledDataset.load(path: noText)) { error in
            XCTAssertEqual(error as? DatasetError, .missingField(file: noText, line: 1, field: "text"))
        }
        let fractional = try FixturePaths.temporaryFile(named: "d.jsonl", contents: "{\"text\": \"a\", \"label\": 1.5}\n")
        XCTAssertThrowsError(try LabeledDataset.load(path: fractional)) { error in
            guard case .wrongFieldType(_, 1, "label", _)? = error as? DatasetError else { return XCTFail("\(error)") }
        }
    }

    func testUnknownExtensionAndEmptyFileAreRejected() throws {
        XCTAssertThrowsError(try LabeledDataset.load(path: "/tmp/data.txt")) { error in
            XCTAssertEqual(error as? DatasetError, .unknownFormat(file: "/tmp/data.txt"))
        }
        let headerOnly = try FixturePaths.temporaryFile(named: "d.csv", contents: "text,label\n")
        XCTAssertThrowsError(try LabeledDataset.load(path: headerOnly)) { error in
            XCTAssertEqual(error as? DatasetError, .empty(file: headerOnly))
        }
        XCTAssertThrowsError(try LabeledDataset.load(path: "/nonexistent/d.csv")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent/d.csv"))
        }
    }

    func testWriteThenLoadRoundTripsBothFormats() throws {
        let source = try LabeledDataset.load(path: FixturePaths.fixture("data", "sample.csv"))
        let directory = (try FixturePaths.temporaryFile(named: "x", contents: "") as NSString).deletingLastPathComponent
        for name in ["out.csv", "out.jsonl"] {
            let path = directory + "/" + name
            try source.write(to: path)
            XCTAssertEqual(try LabeledDataset.load(path: path, labelNames: source.labelNames), source, name)
        }
        let multi = try LabeledDataset.load(path: FixturePaths.fixture("data", "multilabel.jsonl"))
        try multi.write(to: directory + "/multi.jsonl")
        XCTAssertEqual(try LabeledDataset.load(path: directory + "/multi.jsonl", labelNames: multi.labelNames), multi)
        XCTAssertThrowsError(try multi.write(to: directory + "/multi.csv"))
        // Only the final names remain: no temporary ".partial-…" file left behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        XCTAssertEqual(left, ["multi.jsonl", "out.csv", "out.jsonl", "x"])
    }

    func testLabelNamesFileKeepsLineOrder() throws {
        let path = try FixturePaths.temporaryFile(named: "labels.txt", contents: "pos\r\nneg\n\nneutral\n")
        XCTAssertEqual(try LabeledDataset.labelNames(fromFile: path), ["pos", "neg", "neutral"])
        let empty = try FixturePaths.temporaryFile(named: "labels.txt", contents: "\n")
        XCTAssertThrowsError(try LabeledDataset.labelNames(fromFile: empty)) { error in
            XCTAssertEqual(error as? DatasetError, .empty(file: empty))
        }
    }
}
