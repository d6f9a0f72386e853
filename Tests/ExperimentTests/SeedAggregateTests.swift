// Tables over seeds: mean ± sample std per cell (closed form), the mean column from the
// per-seed row means, missing cells stay missing, and runs of different shapes are refused.

import Experiment
import XCTest

final class SeedAggregateTests: XCTestCase {
    func table(_ a: Double, _ b: Double?) -> ResultTable {
        var t = ResultTable(title: "In-domain", columns: ["x", "y"])
        t.add("RegMean", group: "merge", cells: [Score(accuracy: a, macroF1: a / 2), b.map { Score(accuracy: $0, macroF1: $0) }])
        return t
    }

    func testCellsAreMeanPlusMinusSampleStd() throws {
        let t = try ResultTable.acrossSeeds([table(0.5, 0.9), table(0.7, 0.9), table(0.9, 0.9)])
        let cell = try XCTUnwrap(t.rows[0].cells[0])
        XCTAssertEqual(cell.accuracy, 0.7, accuracy: 1e-12)
        XCTAssertEqual(cell.accuracyStd!, 0.2, accuracy: 1e-12)        // sqrt(((-.2)² + 0 + .2²) / 2)
        XCTAssertEqual(cell.macroF1Std!, 0.1, accuracy: 1e-12)
        // Row means per seed: 0.7, 0.8, 0.9 → 0.8 ± 0.1.
        XCTAssertEqual(t.rows[0].mean!.accuracy, 0.8, accuracy: 1e-12)
        XCTAssertEqual(t.rows[0].mean!.accuracyStd!, 0.1, accuracy: 1e-12)
        XCTAssertTrue(t.markdown().contains("| RegMean | 70.0 ± 20.0 / 35.0 ± 10.0 | 90.0 ± 0.0 / 90.0 ± 0.0 | 80.0 ± 10.0 / "), t.markdown())
    }

    func testOneSeedIsUnchangedAndAMissingCellStaysMissing() throws {
        XCTAssertEqual(try ResultTable.acrossSeeds([table(0.5, 0.9)]).markdown(), table(0.5, 0.9).markdown())
        let t = try ResultTable.acrossSeeds([table(0.5, 0.9), table(0.7, nil)])
        XCTAssertNil(t.rows[0].cells[1])
        XCTAssertNil(t.rows[0].mean)
    }

    func testDifferentShapesNameTheTable() {
        var other = table(0.5, 0.9)
        other.add("Fisher", group: "merge", cells: [nil, nil])
        XCTAssertThrowsError(try ResultTable.acrossSeeds([table(0.5, 0.9), other])) { error in
            XCTAssertTrue("\(error)".contains("In-domain") && "\(error)".contains("2 rows"), "\(error)")
        }
    }
}
