// Trainer: fine-tuning a BertEncoder with a classification head on a labelled dataset —
// seeded shuffling per epoch, mini-batches padded to their longest row, one TrainingSteps
// (AdamW, linear warmup/decay, gradient-norm clipping: transformers' recipe) per run, progress
// on a TTY or as log lines.

import Console
import Foundation
import LinAlg

public struct TrainingOptions: Sendable, Equatable {
    public var epochs = 3
    public var learningRate: Float = 5e-5
    public var batchSize = 16
    public var maxLength = 128
    public var seed: UInt64 = 42
    /// Fraction of all steps spent warming the learning rate up from 0 (transformers' recipe for
    /// GLUE-style fine-tuning: 6%).
    public var warmupFraction = 0.06
    /// AdamW weight decay, not applied to biases and LayerNorm weights (as transformers' Trainer).
    public var weightDecay: Float = 0.01
    /// Global gradient-norm clipping (transformers' max_grad_norm).
    public var maxGradNorm: Float = 1
    /// Dropout as the model's config says; false trains without it (deterministic runs, parity checks).
    public var dropout = true
    public init() {}
}

public struct TrainingSummary: Sendable {
    public let steps: Int
    public let examples: Int
    /// Mean training loss of each epoch.
    public let epochLosses: [Double]
    public let seconds: Double
}

public final class Trainer {
    public let model: BertEncoder
    public let tokenizer: WordPieceTokenizer
    public let options: TrainingOptions

    public init(model: BertEncoder, tokenizer: WordPieceTokenizer, options: TrainingOptions) {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
    }

    /// Targets of a slice of examples in the model's problem type.
    static func targets(_ examples: ArraySlice<LabeledExample>, model: BertEncoder) -> ClassificationTargets {
        let k = model.config.numLabels
        switch model.config.problemType {
        case .singleLabel:
            return .classes(examples.map { Int32($0.labels.first ?? 0) })
        case .multiLabel:
            var y = [Float](repeating: 0, count: examples.count * k)
            for (b, e) in examples.enumerated() { for l in e.labels { y[b * k + l] = 1 } }
            return .multiHot(y)
        }
    }

    /// Trains on `data` in place; progress goes to a Console.ProgressBar on stderr (redrawn on
    /// a TTY, log lines otherwise). `afterEpoch` (epoch index from 0) runs after every epoch
    /// and returns false to stop early; the learning-rate schedule still spans all epochs.
    @discardableResult
    public func train(_ data: LabeledDataset, progressLabel: String = "fine-tune",
                      afterEpoch: (Int) throws -> Bool = { _ in true }) throws -> TrainingSummary {
        guard model.config.numLabels > 0 else { throw EncoderError.noClassifier }
        for e in data.examples { for l in e.labels where l < 0 || l >= model.config.numLabels {
            throw EncoderError.labelOutOfRange(label: l, numLabels: model.config.numLabels)
        } }
        let stepsPerEpoch = (data.count + options.batchSize - 1) / options.batchSize
        let total = stepsPerEpoch * options.epochs
        let steps = TrainingSteps(model: model, options: options, totalSteps: total)

        let bar = ProgressBar(total: total, label: progressLabel)
        let start = DispatchTime.now().uptimeNanoseconds
        var epochLosses: [Double] = []
        for epoch in 0..<options.epochs {
            let order = data.shuffled(seed: options.seed &+ UInt64(epoch)).examples
            var lossSum = 0.0
            for first in stride(from: 0, to: order.count, by: options.batchSize) {
                let batch = order[first..<min(first + options.batchSize, order.count)]
                let input = EncoderInput(tokenizer.batch(batch.map(\.text), maxLength: options.maxLength))
                let step = try steps.step(input, targets: Self.targets(batch, model: model))
                lossSum += step.loss * Double(batch.count)
                bar.update(completed: steps.taken, metrics: [("epoch", "\(epoch + 1)/\(options.epochs)"),
                                                             ("loss", String(format: "%.4f", step.loss)),
                                                             ("grad", String(format: "%.2f", step.gradientNorm))])
            }
            epochLosses.append(lossSum / Double(max(order.count, 1)))
            if try !afterEpoch(epoch) { break }
        }
        bar.finish()
        return TrainingSummary(steps: steps.taken, examples: data.count, epochLosses: epochLosses,
                               seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
