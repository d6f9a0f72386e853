// Trainer: fine-tuning a BertEncoder with a classification head on a labelled dataset —
// seeded shuffling per epoch, mini-batches padded to their longest row, AdamW with linear
// warmup/decay and gradient-norm clipping, progress on a TTY or as log lines.

import Console
import Foundation
import LinAlg

public struct TrainingOptions: Sendable, Equatable {
    public var epochs = 3
    public var learningRate: Float = 5e-5
    public var batchSize = 16
    public var maxLength = 128
    public var seed: UInt64 = 42
    /// Fraction of all steps spent warming the learning rate up from 0.
    public var warmupFraction = 0.1
    public var weightDecay: Float = 0.01
    public var maxGradNorm: Float = 1
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
    /// a TTY, log lines otherwise).
    @discardableResult
    public func train(_ data: LabeledDataset, progressLabel: String = "fine-tune") throws -> TrainingSummary {
        guard model.config.numLabels > 0 else { throw EncoderError.noClassifier }
        for e in data.examples { for l in e.labels where l < 0 || l >= model.config.numLabels {
            throw EncoderError.labelOutOfRange(label: l, numLabels: model.config.numLabels)
        } }
        let p = model.parameters
        let stepsPerEpoch = (data.count + options.batchSize - 1) / options.batchSize
        let total = stepsPerEpoch * options.epochs
        let schedule = LinearWarmupDecay(peak: options.learningRate,
                                         warmupSteps: Int((Double(total) * options.warmupFraction).rounded()), totalSteps: total)
        let optimizer = AdamW(config: AdamWConfig(learningRate: options.learningRate, weightDecay: options.weightDecay),
                              parameterSizes: p.entries.map(\.count))
        let slices = p.entries.map { UnsafeMutableBufferPointer(rebasing: p.values[$0.offset..<($0.offset + $0.count)]) }
        let gradSlices = p.entries.map { UnsafeBufferPointer(rebasing: p.gradients[$0.offset..<($0.offset + $0.count)]) }
        let decayMask = p.entries.map(\.decays)
        model.dropoutRNG = SplitMix64(seed: options.seed &+ 0x5EED)

        let bar = ProgressBar(total: total, label: progressLabel)
        let start = DispatchTime.now().uptimeNanoseconds
        var step = 0
        var epochLosses: [Double] = []
        for epoch in 0..<options.epochs {
            let order = data.shuffled(seed: options.seed &+ UInt64(epoch)).examples
            var lossSum = 0.0
            for first in stride(from: 0, to: order.count, by: options.batchSize) {
                let batch = order[first..<min(first + options.batchSize, order.count)]
                let input = EncoderInput(tokenizer.batch(batch.map(\.text), maxLength: options.maxLength))
                p.zeroGradients()
                let loss = try model.lossAndGradients(input, targets: Self.targets(batch, model: model), training: true)
                let norm = clipGradientNorm([p.gradients], maxNorm: options.maxGradNorm)
                optimizer.step(parameters: slices, gradients: gradSlices, learningRate: schedule.rate(at: step), decayMask: decayMask)
                step += 1
                lossSum += loss * Double(batch.count)
                bar.update(completed: step, metrics: [("epoch", "\(epoch + 1)/\(options.epochs)"),
                                                      ("loss", String(format: "%.4f", loss)),
                                                      ("grad", String(format: "%.2f", norm))])
            }
            epochLosses.append(lossSum / Double(max(order.count, 1)))
        }
        bar.finish()
        return TrainingSummary(steps: step, examples: data.count, epochLosses: epochLosses,
                               seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
