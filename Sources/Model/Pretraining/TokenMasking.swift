// TokenMasking: BERT's masked-language-model corruption of a batch (Devlin et al. 2019, §3.1):
// each real token other than [CLS]/[SEP]/[PAD] is selected with probability 15%; a selected
// token becomes [MASK] (80%), a uniformly random vocabulary id (10%) or stays as it was (10%),
// and the model must predict the original id at every selected position.

import LinAlg

/// A corrupted batch and what the model must recover from it.
public struct MaskedTokens: Sendable, Equatable {
    /// The batch with the selected tokens replaced (B×T, padding and mask as the original).
    public var input: EncoderInput
    /// Flat row indices b·T + t of the selected tokens, ascending.
    public var positions: [Int32]
    /// The original id at each selected position.
    public var labels: [Int32]

    public init(input: EncoderInput, positions: [Int32], labels: [Int32]) {
        self.input = input; self.positions = positions; self.labels = labels
    }
}

public struct TokenMasking: Sendable {
    public var selectProbability = 0.15
    /// Of the selected tokens: the share replaced by [MASK], and the share replaced by a random id
    /// (the rest stay unchanged).
    public var maskShare = 0.8
    public var randomShare = 0.1
    public let maskID: Int32
    public let vocabularySize: Int
    /// Ids never selected ([CLS], [SEP], [PAD]); padding positions are never selected either.
    public let specialIDs: Set<Int32>

    public init(maskID: Int32, vocabularySize: Int, specialIDs: Set<Int32>) {
        self.maskID = maskID; self.vocabularySize = vocabularySize; self.specialIDs = specialIDs
    }

    /// [MASK], the vocabulary size and [CLS]/[SEP]/[PAD] of `tokenizer`.
    public init(tokenizer: WordPieceTokenizer) throws {
        guard let mask = tokenizer.id(for: "[MASK]") else { throw PretrainingError.missingMaskToken }
        self.init(maskID: mask, vocabularySize: tokenizer.vocabularySize,
                  specialIDs: [tokenizer.clsID, tokenizer.sepID, tokenizer.padID])
    }

    /// Corrupts `input`. A batch in which no token was drawn gets one eligible token selected
    /// uniformly (a step needs at least one prediction); a batch with no eligible token has no
    /// predictions.
    public func mask(_ input: EncoderInput, rng: inout SplitMix64) -> MaskedTokens {
        var out = input
        var positions: [Int32] = [], labels: [Int32] = []
        var eligible: [Int] = []
        func corrupt(_ r: Int) {
            positions.append(Int32(r))
            labels.append(input.inputIDs[r])
            let u = Double.random(in: 0..<1, using: &rng)
            if u < maskShare {
                out.inputIDs[r] = maskID
            } else if u < maskShare + randomShare {
                out.inputIDs[r] = Int32(rng.next() % UInt64(vocabularySize))
            }
        }
        for r in 0..<input.rows where input.attentionMask[r] != 0 && !specialIDs.contains(input.inputIDs[r]) {
            eligible.append(r)
            if Double.random(in: 0..<1, using: &rng) < selectProbability { corrupt(r) }
        }
        if positions.isEmpty && !eligible.isEmpty { corrupt(eligible[Int(rng.next() % UInt64(eligible.count))]) }
        return MaskedTokens(input: out, positions: positions, labels: labels)
    }
}
