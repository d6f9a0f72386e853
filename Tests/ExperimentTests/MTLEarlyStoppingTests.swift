// MTL early stopping on a tiny random BERT: with scripted validation scores the run stops
// two epochs after the best one, and the saved model is bit for bit the model after the
// best epoch (trained again, stopped there, with the same schedule).

import Experiment
import Foundation
import Model
import XCTest

final class MTLEarlyStoppingTests: XCTestCase {
    func makeBase(in root: String) throws -> String {
        let words = ["the", "a", "film", "was", "good", "great", "bad", "awful"]
        let dir = root + "/base"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ((["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words).joined(separator: "\n") + "\n").write(toFile: dir + "/vocab.txt", atomically: true, encoding: .utf8)
        let config = BertConfig(vocabSize: 5 + words.count, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2,
                                intermediateSize: 32, maxPositionEmbeddings: 16)
        try ModelDirectory.save(BertEncoder(config: config, seed: 7), to: dir, tokenizerSource: dir)
        return dir
    }

    var data: LabeledDataset {
        let texts = ["the film was good", "a film was great", "the film was bad", "a film was awful"]
        return LabeledDataset(examples: (0..<16).map { LabeledExample(text: texts[$0 % 4], labels: [$0 % 4 < 2 ? 1 : 0]) },
                              labelNames: ["negative", "positive"], isMultiLabel: false)
    }

    func testKeepsTheBestEpochAndStopsAfterPatience() throws {
        let root = NSTemporaryDirectory() + "mtl-early-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = try makeBase(in: root)
        var options = TrainingOptions()
        options.epochs = 6; options.learningRate = 1e-3; options.batchSize = 4; options.maxLength = 8; options.seed = 3
        let scripted = [0.5, 0.9, 0.6, 0.4, 0.95, 0.99]   // best 0.9 at epoch 2; epochs 3 and 4 do not improve: stop
        var calls = 0
        let summary = try Scorer.trainMTL(base: base, data: data, options: options, directory: root + "/mtl") { _, _ in
            defer { calls += 1 }
            return scripted[calls]
        }
        XCTAssertEqual(calls, 4)
        XCTAssertEqual(summary.validation, [0.5, 0.9, 0.6, 0.4])
        XCTAssertEqual(summary.bestEpoch, 2)
        XCTAssertEqual(summary.maxEpochs, 6)

        // The same training stopped after epoch 2 (same 6-epoch schedule) gives the saved weights.
        let model = BertEncoder(base: try ModelDirectory.load(base, seed: 3), labels: data.labelNames, problemType: .singleLabel, pooling: .cls, seed: 3)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: base + "/vocab.txt")
        try Trainer(model: model, tokenizer: tokenizer, options: options).train(data.shuffled(seed: 3)) { $0 < 1 }
        try ModelDirectory.save(model, to: root + "/reference", tokenizerSource: base)
        XCTAssertEqual(FileManager.default.contents(atPath: root + "/mtl/model.safetensors"),
                       FileManager.default.contents(atPath: root + "/reference/model.safetensors"))

        // A second call with the same inputs reuses the model and its summary without training.
        let again = try Scorer.trainMTL(base: base, data: data, options: options, directory: root + "/mtl") { _, _ in
            XCTFail("no validation when reused"); return 0
        }
        XCTAssertEqual(again.bestEpoch, 2)
    }
}
