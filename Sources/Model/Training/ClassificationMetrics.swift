// ClassificationMetrics: the one definition of every classification metric FedMerge reports —
// accuracy, precision, recall, F1, macro-F1 and multi-label exact match — read off counts
// (a confusion matrix, or per-label true/false positives), with scikit-learn's default
// conventions. `fedmerge evaluate`, the agents' EVAL, fine-tuning's test score and the
// experiment runner all go through these counts.

/// Single-label counts: `counts[truth][predicted]` over classes 0..<classes.
public struct ConfusionMatrix: Sendable, Equatable, Codable {
    public let classes: Int
    public private(set) var counts: [[Int]]

    public init(classes: Int) {
        self.classes = classes
        counts = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    }

    /// The matrix of paired predictions and labels.
    public init(predictions: [Int], labels: [Int], classes: Int) {
        precondition(predictions.count == labels.count, "\(predictions.count) predictions for \(labels.count) labels")
        self.init(classes: classes)
        for (p, t) in zip(predictions, labels) { add(predicted: p, truth: t) }
    }

    public mutating func add(predicted: Int, truth: Int) {
        precondition((0..<classes).contains(predicted) && (0..<classes).contains(truth),
                     "class index \(predicted) or \(truth) outside 0..<\(classes)")
        counts[truth][predicted] += 1
    }

    public var total: Int { counts.reduce(0) { $0 + $1.reduce(0, +) } }
    /// Examples whose label is c (the row sum).
    public func support(_ c: Int) -> Int { counts[c].reduce(0, +) }
    /// Examples predicted as c (the column sum).
    public func predicted(_ c: Int) -> Int { counts.reduce(0) { $0 + $1[c] } }

    /// Fraction of examples on the diagonal (0 for no examples).
    public var accuracy: Double {
        let n = total
        return n == 0 ? 0 : Double((0..<classes).reduce(0) { $0 + counts[$1][$1] }) / Double(n)
    }

    /// TP / (TP + FP); 0 when c is never predicted (sklearn's zero_division default).
    public func precision(_ c: Int) -> Double { ratio(counts[c][c], predicted(c)) }
    /// TP / (TP + FN); 0 when c has no support.
    public func recall(_ c: Int) -> Double { ratio(counts[c][c], support(c)) }
    /// 2·TP / (2·TP + FP + FN); 0 when c occurs neither as label nor as prediction.
    public func f1(_ c: Int) -> Double { ratio(2 * counts[c][c], support(c) + predicted(c)) }

    /// Unweighted mean of F1 over the classes that occur in the labels or the predictions, as
    /// sklearn's f1_score(average="macro"): a class absent from both is left out; a class
    /// predicted without support (or with support, never predicted) counts with F1 = 0.
    public var macroF1: Double {
        let present = (0..<classes).filter { support($0) + predicted($0) > 0 }
        return present.isEmpty ? 0 : present.reduce(0) { $0 + f1($1) } / Double(present.count)
    }
}

/// Multi-label counts: per label column, true positives, false positives and false negatives,
/// plus the rows predicted exactly.
public struct MultiLabelCounts: Sendable, Equatable, Codable {
    public let columns: Int
    public private(set) var truePositives: [Int], falsePositives: [Int], falseNegatives: [Int]
    public private(set) var rows = 0, exactRows = 0

    public init(columns: Int) {
        self.columns = columns
        truePositives = [Int](repeating: 0, count: columns)
        falsePositives = truePositives
        falseNegatives = truePositives
    }

    public mutating func add(predicted row: [Bool], truth: [Bool]) {
        precondition(row.count == columns && truth.count == columns,
                     "rows of \(row.count) and \(truth.count) labels; expected \(columns)")
        rows += 1
        if row == truth { exactRows += 1 }
        for j in 0..<columns {
            switch (row[j], truth[j]) {
            case (true, true): truePositives[j] += 1
            case (true, false): falsePositives[j] += 1
            case (false, true): falseNegatives[j] += 1
            case (false, false): break
            }
        }
    }

    /// Fraction of rows predicted exactly (sklearn's accuracy_score on indicator matrices).
    public var exactMatch: Double { ratio(exactRows, rows) }
    public func support(_ j: Int) -> Int { truePositives[j] + falseNegatives[j] }
    public func precision(_ j: Int) -> Double { ratio(truePositives[j], truePositives[j] + falsePositives[j]) }
    public func recall(_ j: Int) -> Double { ratio(truePositives[j], support(j)) }
    public func f1(_ j: Int) -> Double { ratio(2 * truePositives[j], 2 * truePositives[j] + falsePositives[j] + falseNegatives[j]) }
    /// Mean F1 over all label columns; a column never positive in truth or prediction counts
    /// as 0 (sklearn's f1_score(average="macro") on indicator matrices, zero_division default).
    public var macroF1: Double { columns == 0 ? 0 : (0..<columns).reduce(0) { $0 + f1($1) } / Double(columns) }
}

/// a / b, or 0 when b is 0.
private func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }

/// Shorthands over paired arrays, for callers that have them already.
public enum ClassificationMetrics {
    public static func accuracy(predictions: [Int], labels: [Int]) -> Double {
        ConfusionMatrix(predictions: predictions, labels: labels, classes: (predictions + labels).max().map { $0 + 1 } ?? 0).accuracy
    }

    public static func macroF1(predictions: [Int], labels: [Int], classes: Int) -> Double {
        ConfusionMatrix(predictions: predictions, labels: labels, classes: classes).macroF1
    }

    public static func multiLabel(predicted: [[Bool]], truth: [[Bool]]) -> (exactMatch: Double, macroF1: Double) {
        precondition(predicted.count == truth.count, "multiLabel: \(predicted.count) predicted rows for \(truth.count) true rows")
        var counts = MultiLabelCounts(columns: truth.first?.count ?? 0)
        for (row, expected) in zip(predicted, truth) { counts.add(predicted: row, truth: expected) }
        return (counts.exactMatch, counts.macroF1)
    }
}
