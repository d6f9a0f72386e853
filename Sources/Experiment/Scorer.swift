// The runner's own evaluation: logits of a model directory on a labelled set (through Model's
// BatchedPredictor; cached, so a model scored on several tables runs once), accuracy/macro-F1 from logits (optionally over a
// block of a joint label space), the logit-average ensemble, and the in-process MTL model.

import AtomicIO
import Foundation
import LinAlg
import Merge
import Model

public final class Scorer {
    let tokenizer: WordPieceTokenizer
    /// "model dir|dataset key" → logits rows (examples × labels).
    var cache: [String: [[Float]]] = [:]

    public init(vocabulary: String) throws {
        tokenizer = try WordPieceTokenizer(vocabularyFile: vocabulary)
    }

    /// Logits of the model in `directory` on `data` (no dropout), batch by batch.
    public func logits(model directory: String, data: LabeledDataset, key: String, maxLength: Int) throws -> [[Float]] {
        let cacheKey = directory + "|" + key
        if let hit = cache[cacheKey] { return hit }
        let model = try ModelDirectory.load(directory)
        let rows = try Self.logits(model, tokenizer: tokenizer, data: data, maxLength: maxLength)
        cache[cacheKey] = rows
        return rows
    }

    static func logits(_ model: BertEncoder, tokenizer: WordPieceTokenizer, data: LabeledDataset, maxLength: Int) throws -> [[Float]] {
        var rows: [[Float]] = []
        var texts = data.examples.makeIterator()
        try BatchedPredictor(model: model, tokenizer: tokenizer, plan: BatchPlan(maxLength: maxLength))
            .run(next: { texts.next().map { ((), $0.text) } }) { _, logits in rows.append(Array(logits)) }
        return rows
    }

    /// Accuracy and macro-F1 of argmax predictions (Model's ConfusionMatrix, the definitions
    /// `fedmerge evaluate` and the agents use); with `block`, the argmax runs over those logit
    /// columns only and label l means column block.lowerBound + l.
    public static func score(logits: [[Float]], labels: [Int], classes: Int, block: Range<Int>? = nil) -> Score {
        let predictions = logits.map { row -> Int in
            let range = block ?? 0..<row.count
            return range.max { row[$0] < row[$1] }! - range.lowerBound
        }
        let counts = ConfusionMatrix(predictions: predictions, labels: labels, classes: classes)
        return Score(accuracy: counts.accuracy, macroF1: counts.macroF1)
    }

    public func score(model directory: String, data: LabeledDataset, key: String, maxLength: Int) throws -> Score {
        Self.score(logits: try logits(model: directory, data: data, key: key, maxLength: maxLength),
                   labels: data.singleLabels, classes: data.labelNames.count)
    }

    /// The logit average of several models (Merge.Ensemble), scored.
    public func ensemble(models: [String], data: LabeledDataset, key: String, maxLength: Int) throws -> Score {
        let tensors = try models.map { m -> Tensor<Float> in
            let rows = try logits(model: m, data: data, key: key, maxLength: maxLength)
            return try Tensor(shape: [rows.count, rows.first?.count ?? 0], storage: rows.flatMap { $0 })
        }
        let mean = try Ensemble.averageLogits(tensors)
        let k = mean.shape[1]
        let rows = (0..<mean.shape[0]).map { Array(mean.storage[($0 * k)..<(($0 + 1) * k)]) }
        return Self.score(logits: rows, labels: data.singleLabels, classes: data.labelNames.count)
    }

    /// Trains (or reuses, when `directory` holds a model trained from the same description) one
    /// model on `data` in-process: the multi-task upper bound, outside the federation.
    public static func trainMTL(base: String, data: LabeledDataset, options: TrainingOptions, directory: String) throws {
        let description = "examples=\(data.count) labels=\(data.labelNames) epochs=\(options.epochs) lr=\(options.learningRate) batch=\(options.batchSize) max_len=\(options.maxLength) seed=\(options.seed) first=\(data.examples.first?.text ?? "")"
        let keyPath = directory + "/mtl-inputs.txt"
        if (try? String(contentsOfFile: keyPath, encoding: .utf8)) == description,
           FileManager.default.fileExists(atPath: directory + "/model.safetensors") {
            say("mtl: reusing \(directory)")
            return
        }
        let pretrained = try ModelDirectory.load(base, seed: options.seed)
        let model = BertEncoder(base: pretrained, labels: data.labelNames, problemType: .singleLabel, pooling: .cls, seed: options.seed)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: base + "/vocab.txt")
        let summary = try Trainer(model: model, tokenizer: tokenizer, options: options).train(data.shuffled(seed: options.seed), progressLabel: "MTL fine-tune")
        say(String(format: "mtl: trained on %d examples in %.0f s", data.count, summary.seconds))
        try ModelDirectory.save(model, to: directory, tokenizerSource: base)
        try AtomicFile.write(Data(description.utf8), to: keyPath)
    }
}
