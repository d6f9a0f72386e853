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

    /// What the MTL training did: validation score after each epoch and the epoch kept.
    public struct MTLSummary: Codable, Sendable {
        public var validation: [Double]
        /// 1-based; the model in the directory is the one after this epoch.
        public var bestEpoch: Int
        public var maxEpochs: Int
    }

    /// Trains (or reuses, when `directory` holds a model trained from the same description) one
    /// model on `data` in-process: the multi-task upper bound, outside the federation. Early
    /// stopping: `validate` scores the model after every epoch (higher is better), the best
    /// epoch's weights are the ones saved, and training stops after `patience` epochs without
    /// improvement or at `options.epochs` (the maximum).
    public static func trainMTL(base: String, data: LabeledDataset, options: TrainingOptions, directory: String, patience: Int = 2,
                                validate: (BertEncoder, WordPieceTokenizer) throws -> Double) throws -> MTLSummary {
        let description = "examples=\(data.count) labels=\(data.labelNames) max_epochs=\(options.epochs) early_stop=validation patience=\(patience) lr=\(options.learningRate) batch=\(options.batchSize) max_len=\(options.maxLength) seed=\(options.seed) first=\(data.examples.first?.text ?? "")"
        let keyPath = directory + "/mtl-inputs.txt", summaryPath = directory + "/mtl-epochs.json"
        if (try? String(contentsOfFile: keyPath, encoding: .utf8)) == description,
           FileManager.default.fileExists(atPath: directory + "/model.safetensors"),
           let saved = FileManager.default.contents(atPath: summaryPath), let summary = try? JSONDecoder().decode(MTLSummary.self, from: saved) {
            say("mtl: reusing \(directory)")
            return summary
        }
        try? FileManager.default.removeItem(atPath: keyPath)   // invalidate before the weights change
        let pretrained = try ModelDirectory.load(base, seed: options.seed)
        let model = BertEncoder(base: pretrained, labels: data.labelNames, problemType: .singleLabel, pooling: .cls, seed: options.seed)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: base + "/vocab.txt")
        var curve: [Double] = [], best = -Double.infinity, bestEpoch = 0
        let summary = try Trainer(model: model, tokenizer: tokenizer, options: options).train(data.shuffled(seed: options.seed), progressLabel: "MTL fine-tune") { epoch in
            let v = try validate(model, tokenizer)
            curve.append(v)
            say(String(format: "mtl: epoch %d/%d, validation %.4f", epoch + 1, options.epochs, v))
            if v > best {
                best = v
                bestEpoch = epoch + 1
                try ModelDirectory.save(model, to: directory, tokenizerSource: base)
            }
            return epoch + 1 - bestEpoch < patience
        }
        say(String(format: "mtl: trained on %d examples in %.0f s; kept epoch %d of %d run (max %d)", data.count, summary.seconds, bestEpoch, curve.count, options.epochs))
        let result = MTLSummary(validation: curve, bestEpoch: bestEpoch, maxEpochs: options.epochs)
        try AtomicFile.write(try JSONEncoder().encode(result), to: summaryPath)
        try AtomicFile.write(Data(description.utf8), to: keyPath)
        return result
    }

    /// Argmax predictions of the model in `directory` on `data`, recorded in
    /// `directory/predictions/<file>.json` (label and prediction per item) and read back from
    /// there when present: merged models live in round directories a new round clears.
    public func predictions(model directory: String, data: LabeledDataset, key: String, file: String, maxLength: Int) throws -> [Int] {
        let path = directory + "/predictions/" + file + ".json"
        if let saved = FileManager.default.contents(atPath: path),
           let record = try? JSONDecoder().decode(PredictionRecord.self, from: saved), record.labels == data.singleLabels {
            return record.predictions
        }
        let rows = try logits(model: directory, data: data, key: key, maxLength: maxLength)
        let predicted = rows.map { row in row.indices.max { row[$0] < row[$1] }! }
        try FileManager.default.createDirectory(atPath: directory + "/predictions", withIntermediateDirectories: true)
        try AtomicFile.write(try JSONEncoder().encode(PredictionRecord(labels: data.singleLabels, predictions: predicted)), to: path)
        return predicted
    }
}

/// Per-item predictions of one model on one test set, beside the model.
struct PredictionRecord: Codable {
    var labels: [Int]
    var predictions: [Int]
}
