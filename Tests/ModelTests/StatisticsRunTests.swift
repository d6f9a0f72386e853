// StatisticsRun end to end: stats.safetensors written from a dataset holds the Grams, Fisher
// and K-FAC tensors under the saved model's names, with the metadata DESIGN.md §3 asks for.

import Foundation
import LinAlg
@testable import Model
import SafeTensors
import XCTest

final class StatisticsRunTests: XCTestCase {
    /// Gram batches on 2 or 3 concurrent workers (each its own encoder and sums, added in
    /// worker order) give the one-worker Grams up to the fp32 rounding of the stored sums
    /// (1e-6 relative, with 5 uneven batches so the workers take different counts), the same
    /// row counts, and — run again with the same worker count — the very same bits.
    func testGramWorkersGiveTheOneWorkerGramsAndRepeatExactly() throws {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "plot", "the", "a"]
        let tokenizer = try WordPieceTokenizer(tokens: vocab)
        let words = ["good", "bad", "movie", "plot", "the", "a"]
        var rng = SplitMix64(seed: 9)
        let texts = (0..<14).map { i in (0..<(1 + i % 6)).map { _ in words[Int(rng.next() % 6)] }.joined(separator: " ") }
        let data = LabeledDataset(examples: texts.enumerated().map { LabeledExample(text: $1, labels: [$0 % 2]) },
                                  labelNames: ["L0", "L1"], isMultiLabel: false)
        let model = tinyStatisticsModel()
        func grams(workers: Int) throws -> (tensors: [String: Tensor<Float>], metadata: [String: String]) {
            var plan = StatisticsPlan()
            plan.gramBatches = 5; plan.batchSize = 3; plan.gramWorkers = workers
            let out = try StatisticsRun.collect(model: model, tokenizer: tokenizer, data: data, plan: plan, showProgress: false)
            return (Dictionary(uniqueKeysWithValues: out.tensors.map { ($0.name, $0.tensor) }), out.metadata)
        }
        let one = try grams(workers: 1)
        XCTAssertEqual(one.metadata["classifier.gram.num_rows"], "14")
        for workers in [2, 3] {
            let many = try grams(workers: workers)
            XCTAssertEqual(many.metadata, one.metadata, "\(workers) workers")
            XCTAssertEqual(Set(many.tensors.keys), Set(one.tensors.keys))
            for (name, t) in one.tensors {
                let u = try XCTUnwrap(many.tensors[name])
                let scale = t.storage.map { abs(Double($0)) }.max() ?? 1
                let worst = zip(t.storage, u.storage).map { abs(Double($0) - Double($1)) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-6 * scale, "\(name), \(workers) workers")
            }
            let again = try grams(workers: workers)
            for (name, t) in many.tensors { XCTAssertEqual(again.tensors[name]?.storage, t.storage, "\(name) repeated") }
        }
    }

    func testWritesGramFisherKFACAndLabelCountsUnderSavedNames() throws {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "plot", "the", "a"]
        let tokenizer = try WordPieceTokenizer(tokens: vocab)
        let texts = ["the movie good", "a plot bad", "bad bad movie", "good", "the plot", "a good movie plot", "bad"]
        let data = LabeledDataset(examples: texts.enumerated().map { LabeledExample(text: $1, labels: [$0 % 3 == 0 ? 1 : 0]) },
                                  labelNames: ["L0", "L1"], isMultiLabel: false)
        let model = tinyStatisticsModel()
        var plan = StatisticsPlan()
        plan.gramBatches = 2; plan.batchSize = 3; plan.fisherExamples = 4; plan.kfacExamples = 2
        let path = NSTemporaryDirectory() + "stats-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try StatisticsRun.write(model: model, tokenizer: tokenizer, data: data, plan: plan, to: path, showProgress: false)

        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.metadata["train.label_counts"], "[4,3]")
        XCTAssertEqual(file.metadata["fisher.num_examples"], "4")
        XCTAssertEqual(file.metadata["gram.num_batches"], "2")
        // 2 batches of 3 examples: the classifier saw 6 pooled rows.
        XCTAssertEqual(file.metadata["classifier.gram.num_rows"], "6")
        XCTAssertEqual(file.metadata["bert.encoder.layer.0.attention.self.key.gram.same_as"], "bert.encoder.layer.0.attention.self.query")
        XCTAssertEqual(file.entry("bert.encoder.layer.1.intermediate.dense.gram")?.shape, [8, 8])
        XCTAssertEqual(file.entry("bert.encoder.layer.1.output.dense.gram")?.shape, [12, 12])
        XCTAssertEqual(file.entry("bert.embeddings.word_embeddings.weight.fisher")?.shape, [30, 8])
        XCTAssertEqual(file.entry("classifier.weight.fisher")?.shape, [2, 8])
        XCTAssertEqual(file.entry("bert.encoder.layer.0.intermediate.dense.kfac_out")?.shape, [12, 12])
        XCTAssertEqual(file.metadata["classifier.kfac_out.num_rows"], "2")
        XCTAssertNil(file.entry("bert.encoder.layer.0.attention.self.value.gram"))
        // Gram rows = non-padding tokens of the 6 examples seen ([CLS] + words + [SEP]).
        let order = data.shuffled(seed: plan.seed).examples.prefix(6)
        let tokens = order.map { tokenizer.encode($0.text, maxLength: 128).count }.reduce(0, +)
        XCTAssertEqual(file.metadata["bert.encoder.layer.0.intermediate.dense.gram.num_rows"], "\(tokens)")
    }
}
