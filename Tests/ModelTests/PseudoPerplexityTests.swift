// Tests of PseudoPerplexity.swift: a model whose logits are all equal has pseudo-perplexity
// exactly the vocabulary size (every token has probability 1/V), and the batched score equals
// a one-copy-at-a-time reference that takes the log-softmax of the logits in Double itself.

import Foundation
import LinAlg
@testable import Model
import XCTest

final class PseudoPerplexityTests: XCTestCase {
    private func fixture() throws -> (BertEncoder, PretrainingCorpus, TokenMasking) {
        let tokenizer = try WordPieceTokenizer(tokens: PretrainerTests.vocabulary)
        let corpus = PretrainingCorpus(texts: PretrainerTests.texts(6), tokenizer: tokenizer, maxLength: 16)
        let model = PretrainerTests.tinyModel(seed: 3, vocabulary: tokenizer.vocabularySize)
        return (model, corpus, try TokenMasking(tokenizer: tokenizer))
    }

    func testUniformLogitsGiveTheVocabularySize() throws {
        let (model, corpus, masking) = try fixture()
        // The decoder is the tied word embeddings plus a bias: both zero make every logit 0.
        for name in ["embeddings.word_embeddings.weight", "cls.predictions.bias"] {
            let e = try XCTUnwrap(model.parameters.entry(name))
            for i in 0..<e.count { model.parameters.values[e.offset + i] = 0 }
        }
        let r = try PseudoPerplexity.score(model, corpus: corpus, masking: masking, sequences: 4, batchSize: 5)
        XCTAssertEqual(r.pseudoPerplexity, Double(model.config.vocabSize), accuracy: 1e-4 * Double(model.config.vocabSize))
        // Every real token of the first four sequences, never [CLS]/[SEP].
        XCTAssertEqual(r.tokens, corpus.sequences.prefix(4).reduce(0) { $0 + $1.count - 2 })
    }

    func testBatchedScoreEqualsOneCopyAtATime() throws {
        let (model, corpus, masking) = try fixture()
        var sum = 0.0, tokens = 0
        for sequence in corpus.sequences.prefix(5) {
            for at in 1..<(sequence.count - 1) {
                var copy = sequence
                copy[at] = masking.maskID
                let logits = try model.maskedLMLogits(MaskedTokens(input: try EncoderInput(sequences: [copy]),
                                                                   positions: [Int32(at)], labels: [sequence[at]]))
                let row = (0..<logits.shape[1]).map { Double(logits[0, $0]) }
                let top = row.max()!
                let logSum = top + log(row.reduce(0) { $0 + exp($1 - top) })
                sum += logSum - row[Int(sequence[at])]
                tokens += 1
            }
        }
        for batchSize in [1, 7, 64] {
            let r = try PseudoPerplexity.score(model, corpus: corpus, masking: masking, sequences: 5, batchSize: batchSize)
            XCTAssertEqual(r.tokens, tokens)
            XCTAssertEqual(r.meanNegativeLogLikelihood, sum / Double(tokens), accuracy: 1e-5, "batch \(batchSize)")
        }
    }
}
