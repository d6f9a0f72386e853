// PseudoPerplexity: the pseudo-log-likelihood score of a masked LM (Salazar et al. 2020,
// "Masked Language Model Scoring") — every real token of a sequence masked in turn, one copy of
// the sequence per token, and the model's log-probability of the true token there;
// PPPL = exp(−Σ log p / tokens). Exhaustive and deterministic where the masked-LM loss samples
// 15 % of the positions, at one forward row per token.

import Foundation

public struct PseudoPerplexityResult: Sendable, Equatable {
    /// Mean −log p(token | the sequence with that token masked), nats.
    public var meanNegativeLogLikelihood: Double
    public var tokens: Int
    public var pseudoPerplexity: Double { exp(meanNegativeLogLikelihood) }
}

public enum PseudoPerplexity {
    /// Scores the first `sequences` sequences of `corpus`; `batchSize` masked copies per forward.
    public static func score(_ model: BertEncoder, corpus: PretrainingCorpus, masking: TokenMasking, sequences: Int,
                             batchSize: Int = 32) throws -> PseudoPerplexityResult {
        var sum = 0.0, tokens = 0
        var copies: [[Int32]] = [], masked: [(copy: Int, at: Int, label: Int32)] = []
        func flush() throws {
            guard !copies.isEmpty else { return }
            let input = try EncoderInput(sequences: copies, padID: corpus.padID)
            let t = input.sequenceLength
            let s = try model.maskedLMScore(MaskedTokens(input: input, positions: masked.map { Int32($0.copy * t + $0.at) },
                                                         labels: masked.map(\.label)))
            sum += s.loss * Double(s.predictions)
            tokens += s.predictions
            copies.removeAll(keepingCapacity: true)
            masked.removeAll(keepingCapacity: true)
        }
        for sequence in corpus.sequences.prefix(max(sequences, 0)) {
            for (at, id) in sequence.enumerated() where !masking.specialIDs.contains(id) {
                var copy = sequence
                copy[at] = masking.maskID
                masked.append((copies.count, at, id))
                copies.append(copy)
                if copies.count == batchSize { try flush() }
            }
        }
        try flush()
        return PseudoPerplexityResult(meanNegativeLogLikelihood: tokens > 0 ? sum / Double(tokens) : 0, tokens: tokens)
    }
}
