// Tests of Pretrainer.swift and PretrainingCorpus.swift (with TrainingSteps' masked-LM step and
// the masked-LM head in ModelDirectory): the held-out masked-LM loss falls over a few dozen steps
// on a tiny corpus; a seed fixes the run; long texts become several [CLS] … [SEP] sequences; a
// saved pretrained directory reloads bit for bit and fine-tunes (its head left behind).

import Foundation
import LinAlg
import Model
import SafeTensors
import XCTest

final class PretrainerTests: XCTestCase {
    static let words = ["the", "cat", "dog", "sat", "ran", "on", "in", "mat", "park", "a", "red", "big"]
    static let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words

    /// Sentences with structure to learn: "the <animal> sat on the mat" / "a <adjective> dog ran in the park".
    static func texts(_ n: Int) -> [String] {
        (0..<n).map { k in
            k % 2 == 0 ? "the \(["cat", "dog"][k / 2 % 2]) sat on the mat" : "a \(["red", "big"][k / 4 % 2]) dog ran in the park"
        }
    }

    static func tinyModel(seed: UInt64, vocabulary: Int) -> BertEncoder {
        BertEncoder(config: BertConfig(vocabSize: vocabulary, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2,
                                       intermediateSize: 32, maxPositionEmbeddings: 16, maskedLMHead: true), seed: seed)
    }

    func pretrain(seed: UInt64, steps: Int) throws -> (BertEncoder, PretrainingCorpus, TokenMasking) {
        let tokenizer = try WordPieceTokenizer(tokens: Self.vocabulary)
        let corpus = PretrainingCorpus(texts: Self.texts(64), tokenizer: tokenizer, maxLength: 16)
        let masking = try TokenMasking(tokenizer: tokenizer)
        let model = Self.tinyModel(seed: seed, vocabulary: tokenizer.vocabularySize)
        var options = TrainingOptions()
        options.learningRate = 3e-3; options.batchSize = 8; options.seed = seed; options.dropout = false
        try Pretrainer(model: model, masking: masking, options: options, steps: steps).train(corpus)
        return (model, corpus, masking)
    }

    func testHeldOutMaskedLMLossFallsOverAHundredAndFiftySteps() throws {
        let (trained, corpus, masking) = try pretrain(seed: 1, steps: 150)
        // The same initialisation, untrained.
        let before = try MaskedLMEvaluation.score(Self.tinyModel(seed: 1, vocabulary: Self.vocabulary.count), corpus: corpus,
                                                  masking: masking, seed: 9)
        let after = try MaskedLMEvaluation.score(trained, corpus: corpus, masking: masking, seed: 9)
        XCTAssertEqual(before.predictions, after.predictions, "both scored on the same masked tokens")
        XCTAssertGreaterThan(before.predictions, 30)
        // A fresh model is near uniform over 17 ids (ln 17 ≈ 2.83 nats).
        XCTAssertEqual(before.loss, log(17), accuracy: 0.3)
        XCTAssertLessThan(after.loss, before.loss - 1.2, "masked-LM loss \(before.loss) → \(after.loss)")
        XCTAssertGreaterThan(after.accuracy, before.accuracy)
    }

    func testTheSeedFixesTheRun() throws {
        let (a, _, _) = try pretrain(seed: 4, steps: 5)
        let (b, _, _) = try pretrain(seed: 4, steps: 5)
        let (c, _, _) = try pretrain(seed: 5, steps: 5)
        XCTAssertEqual(Array(a.parameters.values), Array(b.parameters.values))
        XCTAssertNotEqual(Array(a.parameters.values), Array(c.parameters.values))
    }

    func testLongTextsAreCutIntoWrappedSequences() throws {
        let tokenizer = try WordPieceTokenizer(tokens: Self.vocabulary)
        let corpus = PretrainingCorpus(texts: ["the cat sat on the mat in the park", "", "dog"], tokenizer: tokenizer, maxLength: 5)
        // 9 pieces in threes, then "dog"; the empty text gives nothing.
        let cat: Int32 = 6, dog: Int32 = 7
        XCTAssertEqual(corpus.sequences.count, 4)
        XCTAssertEqual(corpus.sequences[0], [2, 5, cat, 8, 3])
        XCTAssertEqual(corpus.sequences[3], [2, dog, 3])
        XCTAssertTrue(corpus.sequences.allSatisfy { $0.first == 2 && $0.last == 3 && $0.count <= 5 })
    }

    func testSavedDirectoryReloadsAndFineTunes() throws {
        let root = NSTemporaryDirectory() + "fedmerge-pretrain-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/vocab", withIntermediateDirectories: true)
        try (Self.vocabulary.joined(separator: "\n") + "\n").write(toFile: root + "/vocab/vocab.txt", atomically: true, encoding: .utf8)
        let (model, corpus, masking) = try pretrain(seed: 2, steps: 3)
        try ModelDirectory.save(model, to: root + "/mlm", tokenizerSource: root + "/vocab")

        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/mlm/config.json"))) as! [String: Any]
        XCTAssertEqual(config["architectures"] as? [String], ["BertForMaskedLM"])
        let names = Set(try SafeTensorsCheckpoint(directory: root + "/mlm").files.flatMap(\.names))
        XCTAssertTrue(names.isSuperset(of: ["cls.predictions.bias", "cls.predictions.transform.dense.weight",
                                            "cls.predictions.transform.LayerNorm.weight", "bert.embeddings.word_embeddings.weight"]))
        XCTAssertFalse(names.contains("cls.predictions.decoder.weight"), "the decoder is tied, not stored twice")

        let loaded = try ModelDirectory.load(root + "/mlm")
        XCTAssertTrue(loaded.config.maskedLMHead)
        XCTAssertEqual(Array(loaded.parameters.values), Array(model.parameters.values))
        XCTAssertEqual(try MaskedLMEvaluation.score(loaded, corpus: corpus, masking: masking, seed: 1),
                       try MaskedLMEvaluation.score(model, corpus: corpus, masking: masking, seed: 1))

        // Fine-tuning starts from the encoder and leaves the masked-LM head behind.
        let classifier = BertEncoder(base: loaded, labels: ["a", "b"], problemType: .singleLabel, pooling: .cls, seed: 3)
        XCTAssertFalse(classifier.config.maskedLMHead)
        XCTAssertNil(classifier.parameters.entry("cls.predictions.bias"))
        XCTAssertEqual(classifier.parameters.tensor("encoder.layer.0.output.dense.weight"), loaded.parameters.tensor("encoder.layer.0.output.dense.weight"))
        let tokenizer = try WordPieceTokenizer(tokens: Self.vocabulary)
        var options = TrainingOptions()
        options.dropout = false; options.learningRate = 1e-2
        let steps = TrainingSteps(model: classifier, options: options, totalSteps: 2)
        let input = EncoderInput(tokenizer.batch(["the cat sat", "a dog ran"], maxLength: 16))
        let before = classifier.parameters.tensor("encoder.layer.0.output.dense.weight")
        let step = try steps.step(input, targets: .classes([0, 1]))
        XCTAssertTrue(step.loss.isFinite && step.gradientNorm > 0)
        _ = try steps.step(input, targets: .classes([0, 1]))
        XCTAssertNotEqual(classifier.parameters.tensor("encoder.layer.0.output.dense.weight"), before)
        try ModelDirectory.save(classifier, to: root + "/clf", tokenizerSource: root + "/mlm")
        let reloaded = try ModelDirectory.load(root + "/clf")
        XCTAssertEqual(reloaded.config.labels, ["a", "b"])
        XCTAssertFalse(reloaded.config.maskedLMHead)
    }
}
