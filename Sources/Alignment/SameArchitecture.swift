// SameArchitecture: the checks that two BERTs pair unit for unit (alignment) and parameter for
// parameter (interpolation) — same config shape, same vocabulary — naming what differs.

import Foundation
import Model

public enum SameArchitecture {
    public static func require(_ a: BertConfig, _ b: BertConfig) throws {
        for (field, x, y) in [("hidden_size", a.hiddenSize, b.hiddenSize), ("num_hidden_layers", a.numHiddenLayers, b.numHiddenLayers),
                              ("num_attention_heads", a.numAttentionHeads, b.numAttentionHeads),
                              ("intermediate_size", a.intermediateSize, b.intermediateSize), ("vocab_size", a.vocabSize, b.vocabSize),
                              ("max_position_embeddings", a.maxPositionEmbeddings, b.maxPositionEmbeddings),
                              ("type_vocab_size", a.typeVocabSize, b.typeVocabSize), ("num_labels", a.numLabels, b.numLabels),
                              ("masked-LM head (BertForMaskedLM)", a.maskedLMHead ? 1 : 0, b.maskedLMHead ? 1 : 0)]
        where x != y {
            throw AlignmentError.architectureMismatch(field: field, reference: x, model: y)
        }
    }

    /// The directories' vocab.txt must be byte-identical: both models read the same token ids.
    public static func requireSameVocabulary(reference: String, model: String) throws {
        guard let a = FileManager.default.contents(atPath: reference + "/vocab.txt") else {
            throw EncoderError.missingFile(path: reference + "/vocab.txt")
        }
        if let b = FileManager.default.contents(atPath: model + "/vocab.txt"), b != a {
            throw AlignmentError.vocabularyMismatch(reference: reference + "/vocab.txt", model: model + "/vocab.txt")
        }
    }
}
