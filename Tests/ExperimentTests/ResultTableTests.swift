// ResultTable: the paper-style layout (groups, mean column, percent cells) and the chart values.

import Experiment
import XCTest

final class ResultTableTests: XCTestCase {
    func testMarkdownLayoutWithGroupsAndMeanColumn() {
        var t = ResultTable(title: "In-domain", columns: ["a", "b"])
        t.add("Avg. f", group: "individual", cells: [Score(accuracy: 0.5, macroF1: 0.4), Score(accuracy: 0.7, macroF1: 0.6)])
        t.add("RegMean", group: "merge", cells: [Score(accuracy: 0.9, macroF1: 0.85), nil], note: "α=0.9")
        let expected = """
        | method | a | b | mean |
        |---|---:|---:|---:|
        | Avg. f | 50.0 / 40.0 | 70.0 / 60.0 | 60.0 / 50.0 |
        | *merge* | | | |
        | RegMean (α=0.9) | 90.0 / 85.0 | — | — |

        """
        XCTAssertEqual(t.markdown(), expected)
    }

    func testOneColumnTableHasNoMeanColumn() {
        var t = ResultTable(title: "Non-iid", columns: ["joint test"])
        t.add("Simple", group: "merge", cells: [Score(accuracy: 0.825, macroF1: 0.8)])
        XCTAssertEqual(t.markdown(), "| method | joint test |\n|---|---:|\n| Simple | 82.5 / 80.0 |\n")
        XCTAssertTrue(t.svg().contains(">80.0</text>"))
    }

    func testScoreMean() {
        let m = Score.mean([Score(accuracy: 0.25, macroF1: 0.125), Score(accuracy: 0.75, macroF1: 0.5)])!
        XCTAssertEqual(m.accuracy, 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.macroF1, 0.3125, accuracy: 1e-12)
        XCTAssertNil(Score.mean([]))
    }
}
