// ContributionAlignment: one federation member's contribution (config.json, model.safetensors,
// stats.safetensors) aligned to a reference model on public text and written as a contribution
// directory in the reference's basis — its weights and its statistics permuted alike — so the
// unchanged merge loop (RegMean, Fisher, average) merges it with the reference's. The
// aggregator's `align:` option runs this for every member but the reference (issue 15 item 4).

import AtomicIO
import Foundation
import LinAlg
import Merge
import MergeIO
import Model
import RoundContract
import SafeTensors

public enum ContributionAlignment {
    /// Every statistic kind a contribution may carry (label counts are metadata and never move).
    static let allKinds: Set<StatisticKind> = [.gram, .fisher, .kfacOut, .labelCounts]

    /// Reads at most `options.maxTexts` texts of `data` (a bad record is an error naming it:
    /// never align on a silently shortened prefix) and tokenizes them into forward batches.
    public static func batches(data: String, tokenizer: WordPieceTokenizer, maxPositions: Int, options: AlignmentOptions) throws -> [EncoderInput] {
        let reader = try TextRecordReader(path: data, format: options.format, textField: options.textField)
        var texts: [String] = []
        while texts.count < options.maxTexts, let record = try reader.next() { texts.append(record.text) }
        let maxLength = min(options.maxLength, maxPositions)
        return stride(from: 0, to: texts.count, by: options.batchSize).map {
            EncoderInput(tokenizer.batch(Array(texts[$0..<min($0 + options.batchSize, texts.count)]), maxLength: maxLength))
        }
    }

    /// Aligns the contribution in `directory` to `reference` on `batches` and writes it, permuted,
    /// into `out` (created; config.json copied, model.safetensors and stats.safetensors permuted,
    /// alignment.json the report). The classifier's labels may differ from the reference's
    /// (heads are not aligned: their outputs are labels); the encoder's shape may not.
    @discardableResult
    public static func write(reference: BertEncoder, referenceName: String, directory: String, batches: [EncoderInput], options: AlignmentOptions,
                             dataName: String, out: String) throws -> AlignmentOutcome {
        let model = try ModelDirectory.load(directory)
        var comparable = model.config
        comparable.labels = reference.config.labels
        try SameArchitecture.require(reference.config, comparable)
        let outcome = try ModelAlignment.align(reference: reference, model: model, batches: batches, options: options, dataName: dataName)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let tensors = try outcome.permutation.permuted(try ModelFiles.loadModel(directory: directory).tensors)
        try SafeTensorsWriter.write(tensors: tensors.pairs, metadata: ["format": "pt", "fedmerge.aligned": "true"], to: out + "/model.safetensors")
        if FileManager.default.fileExists(atPath: directory + "/stats.safetensors") {
            let statistics = try outcome.permutation.permuted(
                try ModelFiles.loadStatistics(path: directory + "/stats.safetensors", model: directory, kinds: allKinds))
            try SafeTensorsWriter.write(tensors: statistics.tensors.pairs, metadata: statistics.metadata, to: out + "/stats.safetensors")
        }
        guard let config = FileManager.default.contents(atPath: directory + "/config.json") else {
            throw EncoderError.missingFile(path: directory + "/config.json")
        }
        try AtomicFile.write(config, to: out + "/config.json")
        let report = ModelAlignment.Report(reference: referenceName, model: directory, data: dataName, attention: options.attention.rawValue,
                                           residual: options.residual.rawValue, feedForward: options.feedForward.rawValue, texts: outcome.texts,
                                           tokens: outcome.tokens, points: outcome.points, permutation: .init(outcome.permutation))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(report), to: out + "/alignment.json")
        return outcome
    }
}
