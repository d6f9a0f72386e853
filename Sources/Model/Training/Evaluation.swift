// Evaluation: a classifier's predictions on a labelled dataset, scored by accuracy and macro-F1
// (single-label: argmax; multi-label: σ > 0.5 per label, exact match and macro-F1).

import Foundation
import LinAlg

public struct EvaluationResult: Sendable, Equatable, Codable {
    public let examples: Int
    /// Single-label accuracy, or multi-label exact-match ratio.
    public let accuracy: Double
    public let macroF1: Double
    public let meanLoss: Double
}

public enum Evaluation {
    /// Runs the model (no dropout) over `data` in batches and scores it.
    public static func evaluate(_ model: BertEncoder, tokenizer: WordPieceTokenizer, data: LabeledDataset,
                                maxLength: Int = 128, batchSize: Int = 32) throws -> EvaluationResult {
        guard model.config.numLabels > 0 else { throw EncoderError.noClassifier }
        let k = model.config.numLabels
        var predictions: [Int] = [], labels: [Int] = []
        var predictedSets: [[Bool]] = [], truthSets: [[Bool]] = []
        var lossSum = 0.0
        for first in stride(from: 0, to: data.count, by: batchSize) {
            let batch = data.examples[first..<min(first + batchSize, data.count)]
            let input = EncoderInput(tokenizer.batch(batch.map(\.text), maxLength: maxLength))
            let probs = try model.probabilities(input)
            for (b, e) in batch.enumerated() {
                let row = Array(probs.storage[(b * k)..<((b + 1) * k)])
                switch model.config.problemType {
                case .singleLabel:
                    let best = row.indices.max { row[$0] < row[$1] }!
                    predictions.append(best)
                    labels.append(e.labels.first ?? 0)
                    lossSum -= log(max(Double(row[e.labels.first ?? 0]), 1e-12))
                case .multiLabel:
                    let truth = (0..<k).map { e.labels.contains($0) }
                    predictedSets.append(row.map { $0 > 0.5 })
                    truthSets.append(truth)
                    for j in 0..<k {
                        let p = min(max(Double(row[j]), 1e-12), 1 - 1e-12)
                        lossSum -= (truth[j] ? log(p) : log(1 - p)) / Double(k)
                    }
                }
            }
        }
        let n = max(data.count, 1)
        switch model.config.problemType {
        case .singleLabel:
            return EvaluationResult(examples: data.count, accuracy: ClassificationMetrics.accuracy(predictions: predictions, labels: labels),
                                    macroF1: ClassificationMetrics.macroF1(predictions: predictions, labels: labels, classes: k),
                                    meanLoss: lossSum / Double(n))
        case .multiLabel:
            let m = ClassificationMetrics.multiLabel(predicted: predictedSets, truth: truthSets)
            return EvaluationResult(examples: data.count, accuracy: m.exactMatch, macroF1: m.macroF1, meanLoss: lossSum / Double(n))
        }
    }
}
