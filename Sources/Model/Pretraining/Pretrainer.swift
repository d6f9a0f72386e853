// Pretrainer: masked-language-model pretraining of a BertEncoder with the MLM head — seeded
// shuffles of the corpus's sequences, each batch freshly masked (TokenMasking), one
// TrainingSteps (AdamW, linear warmup/decay, gradient-norm clipping) for a fixed number of steps.

import Console
import Foundation
import LinAlg

public struct PretrainingSummary: Sendable {
    /// Masked-LM loss of every step (before its update).
    public let losses: [Double]
    public let seconds: Double
    /// Mean loss of the last tenth of the steps (at least one): the run's final training loss.
    public var finalLoss: Double {
        let tail = losses.suffix(max(1, losses.count / 10))
        return tail.reduce(0, +) / Double(max(tail.count, 1))
    }
}

public final class Pretrainer {
    public let model: BertEncoder
    public let masking: TokenMasking
    /// `epochs` is unused: `steps` fixes the run's length.
    public let options: TrainingOptions
    public let steps: Int

    public init(model: BertEncoder, masking: TokenMasking, options: TrainingOptions, steps: Int) {
        self.model = model; self.masking = masking; self.options = options; self.steps = steps
    }

    /// Trains in place on `corpus`, reshuffling it (seeded) each time it is used up.
    @discardableResult
    public func train(_ corpus: PretrainingCorpus, progressLabel: String = "pretrain") throws -> PretrainingSummary {
        guard model.config.maskedLMHead else { throw EncoderError.noMaskedLMHead }
        precondition(corpus.count > 0 && steps >= 1, "pretraining needs sequences and steps")
        let training = TrainingSteps(model: model, options: options, totalSteps: steps)
        var rng = SplitMix64(seed: options.seed &+ 0x4D4C4D)
        let bar = ProgressBar(total: steps, label: progressLabel)
        let start = DispatchTime.now().uptimeNanoseconds
        var order: [Int] = [], next = 0, pass: UInt64 = 0
        var losses: [Double] = []
        for _ in 0..<steps {
            var indices: [Int] = []
            while indices.count < options.batchSize {
                if next == order.count {
                    order = LabeledDataset.permutation(count: corpus.count, seed: options.seed &+ pass)
                    pass += 1
                    next = 0
                }
                let take = min(options.batchSize - indices.count, order.count - next)
                indices += order[next..<(next + take)]
                next += take
            }
            let step = try training.step(masking.mask(corpus.batch(indices), rng: &rng))
            losses.append(step.loss)
            bar.update(completed: training.taken, metrics: [("loss", String(format: "%.4f", step.loss)),
                                                            ("grad", String(format: "%.2f", step.gradientNorm))])
        }
        bar.finish()
        return PretrainingSummary(losses: losses, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
