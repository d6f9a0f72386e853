// TrainingSteps: one optimizer step at a time of transformers' fine-tuning recipe — zero the
// gradients, loss and backward, clip the global gradient norm, AdamW at the schedule's rate
// (decay off for biases and LayerNorm weights). Trainer.train drives it over shuffled batches;
// FinetuneParityTests drives it over a PyTorch run's batches and compares step by step;
// Pretrainer drives it over masked batches (the masked-LM loss instead of the classifier's).

import LinAlg

public final class TrainingSteps {
    public struct Step: Sendable {
        public let loss: Double
        /// Global gradient norm before clipping (what torch.nn.utils.clip_grad_norm_ returns).
        public let gradientNorm: Double
        public let learningRate: Float
    }

    private let model: BertEncoder
    private let options: TrainingOptions
    private let schedule: LinearWarmupDecay
    private let optimizer: AdamW
    private let slices: [UnsafeMutableBufferPointer<Float>]
    private let gradientSlices: [UnsafeBufferPointer<Float>]
    private let decayMask: [Bool]
    public private(set) var taken = 0

    /// `totalSteps` fixes the schedule: warmup over `options.warmupFraction` of it, then decay to 0.
    public init(model: BertEncoder, options: TrainingOptions, totalSteps: Int) {
        self.model = model
        self.options = options
        let p = model.parameters
        schedule = LinearWarmupDecay(peak: options.learningRate,
                                     warmupSteps: Int((Double(totalSteps) * options.warmupFraction).rounded()), totalSteps: totalSteps)
        optimizer = AdamW(config: AdamWConfig(learningRate: options.learningRate, weightDecay: options.weightDecay),
                          parameterSizes: p.entries.map(\.count))
        slices = p.entries.map { UnsafeMutableBufferPointer(rebasing: p.values[$0.offset..<($0.offset + $0.count)]) }
        gradientSlices = p.entries.map { UnsafeBufferPointer(rebasing: p.gradients[$0.offset..<($0.offset + $0.count)]) }
        decayMask = p.entries.map(\.decays)
        model.dropoutRNG = SplitMix64(seed: options.seed &+ 0x5EED)
    }

    /// One step on one batch; returns its mean loss (before the update), the gradient norm and the rate used.
    public func step(_ input: EncoderInput, targets: ClassificationTargets) throws -> Step {
        try step { try model.lossAndGradients(input, targets: targets, training: options.dropout) }
    }

    /// One step on one masked batch, against the masked-LM loss.
    public func step(_ batch: MaskedTokens) throws -> Step {
        try step { try model.maskedLMLossAndGradients(batch, training: options.dropout) }
    }

    private func step(lossAndGradients: () throws -> Double) throws -> Step {
        let p = model.parameters
        p.zeroGradients()
        let loss = try lossAndGradients()
        let norm = clipGradientNorm([p.gradients], maxNorm: options.maxGradNorm)
        let rate = schedule.rate(at: taken)
        optimizer.step(parameters: slices, gradients: gradientSlices, learningRate: rate, decayMask: decayMask)
        taken += 1
        return Step(loss: loss, gradientNorm: norm, learningRate: rate)
    }
}
