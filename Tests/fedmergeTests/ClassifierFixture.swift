// Test support: a small random BERT classifier saved as a model directory, and texts over its
// vocabulary, for the commands that run a model over files (predict, evaluate, inspect).

import Foundation
import LinAlg
import Model

struct ClassifierFixture {
    static let words = ["the", "a", "movie", "plot", "was", "good", "great", "bad", "awful", "not", "very", "quite", "story", "acting"]
    let directory: String
    let encoder: BertEncoder
    let tokenizer: WordPieceTokenizer

    /// Writes vocab.txt and a random classifier over `labels` into `directory`.
    init(directory: String, labels: [String] = ["neg", "neu", "pos"], hidden: Int = 16, layers: Int = 2,
         intermediate: Int = 32, heads: Int = 2, maxPositions: Int = 64, seed: UInt64 = 5) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + Self.words
        try (vocab.joined(separator: "\n") + "\n").write(toFile: directory + "/vocab.txt", atomically: true, encoding: .utf8)
        let config = BertConfig(vocabSize: vocab.count, hiddenSize: hidden, numHiddenLayers: layers, numAttentionHeads: heads,
                                intermediateSize: intermediate, maxPositionEmbeddings: maxPositions, initializerRange: 0.5, labels: labels)
        encoder = BertEncoder(config: config, seed: seed)
        try ModelDirectory.save(encoder, to: directory, tokenizerSource: directory)
        tokenizer = try WordPieceTokenizer(vocabularyFile: directory + "/vocab.txt")
        self.directory = directory
    }

    /// `count` texts of 1…maxWords words, seeded.
    static func texts(_ count: Int, maxWords: Int = 12, seed: UInt64 = 3) -> [String] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            (0...Int(rng.next() % UInt64(maxWords - 1))).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: " ")
        }
    }

    /// The model's probabilities for one text run alone (no padding, no batching): the truth
    /// batched commands must reproduce.
    func probabilities(_ text: String, maxLength: Int = 512) throws -> [Float] {
        try encoder.probabilities(EncoderInput(tokenizer.batch([text], maxLength: min(maxLength, encoder.config.maxPositionEmbeddings)))).storage
    }
}
