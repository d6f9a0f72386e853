// Tests for ClassificationMetrics against hand-computed confusion matrices (scikit-learn conventions).

import XCTest
@testable import Model

final class ClassificationMetricsTests: XCTestCase {
    // labels      0 0 0 1 1 2 2 2 2
    // predictions 0 0 1 1 2 2 2 2 0
    // class 0: TP 2, FP 1, FN 1 → F1 4/6;  class 1: TP 1, FP 1, FN 1 → 2/4;  class 2: TP 3, FP 1, FN 1 → 6/8
    let labels = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    let predictions = [0, 0, 1, 1, 2, 2, 2, 2, 0]

    func testAccuracyCountsExactHits() {
        XCTAssertEqual(ClassificationMetrics.accuracy(predictions: predictions, labels: labels), 6.0 / 9.0, accuracy: 1e-15)
        XCTAssertEqual(ClassificationMetrics.accuracy(predictions: [], labels: []), 0)
    }

    func testMacroF1IsMeanOfPerClassF1() {
        let f1 = ClassificationMetrics.macroF1(predictions: predictions, labels: labels, classes: 3)
        XCTAssertEqual(f1, (4.0 / 6 + 2.0 / 4 + 6.0 / 8) / 3, accuracy: 1e-15)  // 23/36
    }

    func testClassesAbsentFromBothAreExcluded() {
        // Classes 3 and 4 never occur: same 23/36 as with 3 classes.
        let f1 = ClassificationMetrics.macroF1(predictions: predictions, labels: labels, classes: 5)
        XCTAssertEqual(f1, 23.0 / 36, accuracy: 1e-15)
    }

    func testPredictedClassWithoutSupportCountsAsZero() {
        // labels 0 0 1, predictions 0 3 1: class 0 F1 2/3, class 1 F1 1, class 3 (FP only) F1 0.
        // scikit-learn f1_score([0,0,1], [0,3,1], average="macro") = 0.5555…
        let f1 = ClassificationMetrics.macroF1(predictions: [0, 3, 1], labels: [0, 0, 1], classes: 4)
        XCTAssertEqual(f1, 5.0 / 9, accuracy: 1e-15)
    }

    func testMultiLabelExactMatchAndMacroF1OverAllColumns() {
        let truth = [[true, false, false], [true, true, false], [false, false, false]]
        let predicted = [[true, false, false], [false, true, false], [false, false, false]]
        // Rows 0 and 2 exact. Column 0: TP 1, FN 1 → 2/3; column 1: TP 1 → 1; column 2 never
        // positive → 0 (sklearn's zero_division default). Mean 5/9, as sklearn reports.
        let result = ClassificationMetrics.multiLabel(predicted: predicted, truth: truth)
        XCTAssertEqual(result.exactMatch, 2.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(result.macroF1, 5.0 / 9, accuracy: 1e-15)
    }

    func testConfusionMatrixGivesPerClassPrecisionAndRecall() {
        let m = ConfusionMatrix(predictions: predictions, labels: labels, classes: 3)
        // rows: truth, columns: prediction
        XCTAssertEqual(m.counts, [[2, 1, 0], [0, 1, 1], [1, 0, 3]])
        XCTAssertEqual((0..<3).map(m.precision), [2.0 / 3, 1.0 / 2, 3.0 / 4])
        XCTAssertEqual((0..<3).map(m.recall), [2.0 / 3, 1.0 / 2, 3.0 / 4])
        XCTAssertEqual((0..<3).map(m.support), [3, 2, 4])
        // A class never predicted has precision 0 (sklearn's zero_division), not NaN.
        let never = ConfusionMatrix(predictions: [0, 0], labels: [0, 1], classes: 2)
        XCTAssertEqual(never.precision(1), 0)
        XCTAssertEqual(never.recall(1), 0)
        XCTAssertEqual(never.precision(0), 0.5)
    }
}
