// Evaluation: a classifier scored on labelled texts — single-label by argmax (accuracy,
// macro-F1, per-class precision/recall, confusion matrix), multi-label by σ > 0.5 per label
// (exact match, macro-F1, per-label precision/recall) — through BatchedPredictor, so any
// number of examples is scored in bounded memory. The one evaluation path: `fedmerge
// evaluate`, `finetune --test` and the agents' EVAL call it.

import Foundation

/// The headline numbers of an evaluation (what an agent's EVAL and `finetune --test` report).
public struct EvaluationResult: Sendable, Equatable, Codable {
    public let examples: Int
    /// Single-label accuracy, or multi-label exact-match ratio.
    public let accuracy: Double
    public let macroF1: Double
    public let meanLoss: Double
}

/// Everything an evaluation counted; every metric is read off these counts.
public struct EvaluationReport: Sendable, Equatable {
    public let labelNames: [String]
    public let problemType: BertConfig.ProblemType
    /// Single-label counts (empty for multi-label models).
    public private(set) var confusion: ConfusionMatrix
    /// Multi-label counts (empty for single-label models).
    public private(set) var multiLabel: MultiLabelCounts
    public private(set) var examples = 0
    /// Σ cross-entropy (single-label) or Σ mean binary cross-entropy per label (multi-label).
    public private(set) var lossSum = 0.0

    public init(labelNames: [String], problemType: BertConfig.ProblemType) {
        self.labelNames = labelNames
        self.problemType = problemType
        confusion = ConfusionMatrix(classes: problemType == .singleLabel ? labelNames.count : 0)
        multiLabel = MultiLabelCounts(columns: problemType == .multiLabel ? labelNames.count : 0)
    }

    /// Counts one example from its logits and its label indices (single-label: the first one).
    public mutating func add(logits: ArraySlice<Float>, labels: [Int]) {
        let k = labelNames.count
        let p = problemType.probabilities(logits)
        examples += 1
        switch problemType {
        case .singleLabel:
            let truth = labels.first ?? 0
            confusion.add(predicted: p.indices.max { p[$0] < p[$1] }!, truth: truth)
            lossSum -= log(max(Double(p[truth]), 1e-12))
        case .multiLabel:
            let truth = (0..<k).map { labels.contains($0) }
            multiLabel.add(predicted: p.map { $0 > 0.5 }, truth: truth)
            for j in 0..<k {
                let q = min(max(Double(p[j]), 1e-12), 1 - 1e-12)
                lossSum -= (truth[j] ? log(q) : log(1 - q)) / Double(k)
            }
        }
    }

    /// Single-label accuracy, or multi-label exact match.
    public var accuracy: Double { problemType == .singleLabel ? confusion.accuracy : multiLabel.exactMatch }
    public var macroF1: Double { problemType == .singleLabel ? confusion.macroF1 : multiLabel.macroF1 }
    public func precision(_ c: Int) -> Double { problemType == .singleLabel ? confusion.precision(c) : multiLabel.precision(c) }
    public func recall(_ c: Int) -> Double { problemType == .singleLabel ? confusion.recall(c) : multiLabel.recall(c) }
    public func f1(_ c: Int) -> Double { problemType == .singleLabel ? confusion.f1(c) : multiLabel.f1(c) }
    public func support(_ c: Int) -> Int { problemType == .singleLabel ? confusion.support(c) : multiLabel.support(c) }
    public var meanLoss: Double { lossSum / Double(max(examples, 1)) }

    public var result: EvaluationResult {
        EvaluationResult(examples: examples, accuracy: accuracy, macroF1: macroF1, meanLoss: meanLoss)
    }
}

public enum Evaluation {
    /// Scores the model (no dropout) on the `(label indices, text)` pairs `next` yields until nil.
    public static func evaluate(_ model: BertEncoder, tokenizer: WordPieceTokenizer, plan: BatchPlan,
                                progress: (Int) -> Void = { _ in }, next: () throws -> (labels: [Int], text: String)?) throws -> EvaluationReport {
        let predictor = try BatchedPredictor(model: model, tokenizer: tokenizer, plan: plan)
        var report = EvaluationReport(labelNames: model.config.labels, problemType: model.config.problemType)
        try predictor.run(next: { try next().map { ($0.labels, $0.text) } }, progress: progress) { labels, logits in
            for l in labels where !(0..<report.labelNames.count).contains(l) {
                throw EncoderError.labelOutOfRange(label: l, numLabels: report.labelNames.count)
            }
            report.add(logits: logits, labels: labels)
        }
        return report
    }

    /// Scores the model on an in-memory dataset whose label indices follow the model's labels.
    public static func evaluate(_ model: BertEncoder, tokenizer: WordPieceTokenizer, data: LabeledDataset,
                                maxLength: Int = 128, batchSize: Int = 32) throws -> EvaluationResult {
        var examples = data.examples.makeIterator()
        return try evaluate(model, tokenizer: tokenizer, plan: BatchPlan(maxLength: maxLength, batchSize: batchSize)) {
            examples.next().map { ($0.labels, $0.text) }
        }.result
    }
}
