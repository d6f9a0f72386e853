// The Trainer on a separable toy task: a tiny random BERT learns it (held-out accuracy and a
// falling loss), seeded runs are bit-identical, and bad labels are refused by value.

import Foundation
import LinAlg
@testable import Model
import XCTest

final class TrainerTests: XCTestCase {
    static let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "a", "movie", "plot", "film", "was", "is", "really",
                        "good", "great", "fine", "lovely", "bad", "awful", "poor", "dull"]

    /// "the movie was really good" style sentences; label 1 iff the sentiment word is positive.
    func toyData(count: Int, seed: UInt64) -> LabeledDataset {
        var rng = SplitMix64(seed: seed)
        let pos = ["good", "great", "fine", "lovely"], neg = ["bad", "awful", "poor", "dull"]
        func pick(_ a: [String]) -> String { a[Int(rng.next() % UInt64(a.count))] }
        let examples = (0..<count).map { i -> LabeledExample in
            let label = i % 2
            let words = [pick(["the", "a"]), pick(["movie", "plot", "film"]), pick(["was", "is"])]
                + (rng.next() % 2 == 0 ? ["really"] : []) + [pick(label == 1 ? pos : neg)]
            return LabeledExample(text: words.joined(separator: " "), labels: [label])
        }
        return LabeledDataset(examples: examples, labelNames: ["negative", "positive"], isMultiLabel: false)
    }

    func tinyModel() -> BertEncoder {
        let c = BertConfig(vocabSize: Self.vocab.count, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2,
                           intermediateSize: 32, maxPositionEmbeddings: 16, labels: ["negative", "positive"])
        return BertEncoder(config: c, seed: 11)
    }

    var options: TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 8; o.learningRate = 3e-3; o.batchSize = 8; o.maxLength = 16; o.seed = 5
        return o
    }

    func testTrainingLearnsASeparableToyTask() throws {
        let tokenizer = try WordPieceTokenizer(tokens: Self.vocab)
        let model = tinyModel()
        let before = try Evaluation.evaluate(model, tokenizer: tokenizer, data: toyData(count: 40, seed: 2), maxLength: 16)
        let summary = try Trainer(model: model, tokenizer: tokenizer, options: options).train(toyData(count: 96, seed: 1))
        let after = try Evaluation.evaluate(model, tokenizer: tokenizer, data: toyData(count: 40, seed: 2), maxLength: 16)
        XCTAssertEqual(summary.steps, 8 * 12)
        XCTAssertLessThan(summary.epochLosses.last!, summary.epochLosses.first! / 2, "\(summary.epochLosses)")
        XCTAssertLessThan(before.accuracy, 0.8, "an untrained model should not already solve it")
        XCTAssertGreaterThanOrEqual(after.accuracy, 0.95)
        XCTAssertGreaterThanOrEqual(after.macroF1, 0.95)
    }

    /// Early stopping: `afterEpoch` sees every epoch and stops the run when it returns false.
    func testAfterEpochStopsTraining() throws {
        let tokenizer = try WordPieceTokenizer(tokens: Self.vocab)
        var seen: [Int] = []
        let summary = try Trainer(model: tinyModel(), tokenizer: tokenizer, options: options).train(toyData(count: 32, seed: 1)) { epoch in
            seen.append(epoch)
            return epoch < 2
        }
        XCTAssertEqual(seen, [0, 1, 2])
        XCTAssertEqual(summary.epochLosses.count, 3)
        XCTAssertEqual(summary.steps, 3 * 4)
    }

    func testSameSeedGivesBitIdenticalModels() throws {
        let tokenizer = try WordPieceTokenizer(tokens: Self.vocab)
        var o = options
        o.epochs = 2
        let a = tinyModel(), b = tinyModel(), c = tinyModel()
        try Trainer(model: a, tokenizer: tokenizer, options: o).train(toyData(count: 32, seed: 1))
        try Trainer(model: b, tokenizer: tokenizer, options: o).train(toyData(count: 32, seed: 1))
        o.seed = 6
        try Trainer(model: c, tokenizer: tokenizer, options: o).train(toyData(count: 32, seed: 1))
        XCTAssertEqual(Array(a.parameters.values), Array(b.parameters.values))
        XCTAssertNotEqual(Array(a.parameters.values), Array(c.parameters.values))
    }

    func testMultiLabelTrainingLearnsWhichTopicWordsArePresent() throws {
        // Labels: 0 = mentions "plot", 1 = mentions "film", 2 = mentions "dull"; any subset.
        let tokenizer = try WordPieceTokenizer(tokens: Self.vocab)
        func data(_ n: Int, seed: UInt64) -> LabeledDataset {
            var rng = SplitMix64(seed: seed)
            let examples = (0..<n).map { _ -> LabeledExample in
                var words = ["the", "movie", "was"], labels: [Int] = []
                for (k, w) in ["plot", "film", "dull"].enumerated() where rng.next() % 2 == 0 { words.append(w); labels.append(k) }
                return LabeledExample(text: words.joined(separator: " "), labels: labels)
            }
            return LabeledDataset(examples: examples, labelNames: ["plot", "film", "dull"], isMultiLabel: true)
        }
        let c = BertConfig(vocabSize: Self.vocab.count, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 32,
                           maxPositionEmbeddings: 16, labels: ["plot", "film", "dull"], problemType: .multiLabel, pooling: .mean)
        let model = BertEncoder(config: c, seed: 4)
        var o = options
        o.epochs = 16; o.learningRate = 1e-2
        try Trainer(model: model, tokenizer: tokenizer, options: o).train(data(96, seed: 1))
        let result = try Evaluation.evaluate(model, tokenizer: tokenizer, data: data(40, seed: 2), maxLength: 16)
        XCTAssertGreaterThanOrEqual(result.accuracy, 0.9, "exact-match ratio")
        XCTAssertGreaterThanOrEqual(result.macroF1, 0.9)
    }

    func testLabelOutsideTheHeadIsRefused() throws {
        let tokenizer = try WordPieceTokenizer(tokens: Self.vocab)
        let data = LabeledDataset(examples: [LabeledExample(text: "the movie", labels: [2])], labelNames: ["a", "b", "c"], isMultiLabel: false)
        XCTAssertThrowsError(try Trainer(model: tinyModel(), tokenizer: tokenizer, options: options).train(data)) { error in
            XCTAssertEqual(error as? EncoderError, .labelOutOfRange(label: 2, numLabels: 2))
        }
    }
}
