// ClassificationMetrics: accuracy, macro-F1 and multi-label exact match, with scikit-learn's default conventions.

public enum ClassificationMetrics {
    /// Fraction of positions where prediction equals label (0 for no examples).
    public static func accuracy(predictions: [Int], labels: [Int]) -> Double {
        precondition(predictions.count == labels.count, "accuracy: \(predictions.count) predictions for \(labels.count) labels")
        guard !labels.isEmpty else { return 0 }
        return Double(zip(predictions, labels).filter { $0 == $1 }.count) / Double(labels.count)
    }

    /// Unweighted mean over classes of F1 = 2·TP / (2·TP + FP + FN), as sklearn's
    /// f1_score(average="macro") for single-label data: the mean runs over the classes that
    /// occur in the labels or the predictions. A class that never occurs in either is left
    /// out; a class that is predicted but has no support (or has support but is never
    /// predicted) counts with F1 = 0. `classes` bounds the valid indices 0..<classes.
    public static func macroF1(predictions: [Int], labels: [Int], classes: Int) -> Double {
        precondition(predictions.count == labels.count, "macroF1: \(predictions.count) predictions for \(labels.count) labels")
        var truePositives = [Int](repeating: 0, count: classes)
        var falsePositives = [Int](repeating: 0, count: classes)
        var falseNegatives = [Int](repeating: 0, count: classes)
        for (predicted, truth) in zip(predictions, labels) {
            precondition((0..<classes).contains(predicted) && (0..<classes).contains(truth),
                         "macroF1: class index \(predicted) or \(truth) outside 0..<\(classes)")
            if predicted == truth {
                truePositives[truth] += 1
            } else {
                falsePositives[predicted] += 1
                falseNegatives[truth] += 1
            }
        }
        var sum = 0.0
        var present = 0
        for c in 0..<classes {
            let denominator = 2 * truePositives[c] + falsePositives[c] + falseNegatives[c]
            guard denominator > 0 else { continue }  // absent from labels and predictions
            sum += Double(2 * truePositives[c]) / Double(denominator)
            present += 1
        }
        return present == 0 ? 0 : sum / Double(present)
    }

    /// Multi-label rows of per-label booleans. exactMatch: fraction of rows predicted exactly
    /// (sklearn's accuracy_score on indicator matrices). macroF1: mean over all label columns
    /// of the column's F1, where a column with no true and no predicted positives counts as 0
    /// (sklearn's f1_score(average="macro") with its default zero_division).
    public static func multiLabel(predicted: [[Bool]], truth: [[Bool]]) -> (exactMatch: Double, macroF1: Double) {
        precondition(predicted.count == truth.count, "multiLabel: \(predicted.count) predicted rows for \(truth.count) true rows")
        guard let columns = truth.first?.count else { return (0, 0) }
        var truePositives = [Int](repeating: 0, count: columns)
        var falsePositives = [Int](repeating: 0, count: columns)
        var falseNegatives = [Int](repeating: 0, count: columns)
        var exact = 0
        for (row, expected) in zip(predicted, truth) {
            precondition(row.count == columns && expected.count == columns,
                         "multiLabel: rows of \(row.count) and \(expected.count) labels; expected \(columns)")
            if row == expected { exact += 1 }
            for j in 0..<columns {
                switch (row[j], expected[j]) {
                case (true, true): truePositives[j] += 1
                case (true, false): falsePositives[j] += 1
                case (false, true): falseNegatives[j] += 1
                case (false, false): break
                }
            }
        }
        var sum = 0.0
        for j in 0..<columns {
            let denominator = 2 * truePositives[j] + falsePositives[j] + falseNegatives[j]
            if denominator > 0 { sum += Double(2 * truePositives[j]) / Double(denominator) }
        }
        return (Double(exact) / Double(truth.count), columns == 0 ? 0 : sum / Double(columns))
    }
}
