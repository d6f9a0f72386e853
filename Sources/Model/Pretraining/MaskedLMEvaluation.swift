// MaskedLMEvaluation: a model's masked-LM loss on a corpus under one fixed, seeded masking —
// batch k is masked from seed ⊕ k — so two models (or every point between them) are scored
// on exactly the same predictions.

import LinAlg

public struct MaskedLMResult: Sendable, Equatable {
    /// Mean cross-entropy per selected token (nats) and the share predicted right (top-1).
    public var loss: Double
    public var accuracy: Double
    public var predictions: Int
}

public enum MaskedLMEvaluation {
    public static func score(_ model: BertEncoder, corpus: PretrainingCorpus, masking: TokenMasking, batchSize: Int = 32,
                             seed: UInt64 = 0) throws -> MaskedLMResult {
        var lossSum = 0.0, predictions = 0, correct = 0
        for (k, first) in stride(from: 0, to: corpus.count, by: batchSize).enumerated() {
            var rng = SplitMix64(seed: seed ^ (0x9E37_79B9_7F4A_7C15 &* UInt64(k + 1)))
            let batch = masking.mask(corpus.batch(first..<min(first + batchSize, corpus.count)), rng: &rng)
            let s = try model.maskedLMScore(batch)
            lossSum += s.loss * Double(s.predictions)
            predictions += s.predictions
            correct += s.correct
        }
        return MaskedLMResult(loss: predictions > 0 ? lossSum / Double(predictions) : 0,
                              accuracy: predictions > 0 ? Double(correct) / Double(predictions) : 0, predictions: predictions)
    }
}
