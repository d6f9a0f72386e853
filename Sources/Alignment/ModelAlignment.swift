// ModelAlignment: `fedmerge align` as a library call — correlate a reference model A and a
// model B on the same unlabelled text, find B's permutation toward A, and write B permuted as a
// model directory (atomically) with alignment.json: the choices, the permutation, and the mean
// correlation of matched units at every point before and after.

import Foundation
import LinAlg
import Merge
import MergeIO
import Model

public struct AlignmentOptions: Sendable {
    public var attention: AttentionAlignment = .headPerm
    public var residual: ResidualAlignment = .all
    public var feedForward: FeedForwardAlignment = .match
    /// Texts per forward batch, tokens per text, and texts read from the data file at most.
    public var batchSize = 16
    public var maxLength = 128
    public var maxTexts = 4000
    public var format: TextFormat?
    public var textField = "text"
    public init() {}
}

public struct AlignmentOutcome: Sendable {
    public struct PointSummary: Sendable, Codable, Equatable {
        public var point: String
        /// Mean corr(A unit i, B unit i) before, and corr(A unit i, B unit p[i]) after.
        public var before: Double
        public var after: Double
    }
    public var permutation: BertPermutation
    public var tokens: Int
    public var texts: Int
    public var points: [PointSummary]
}

public enum ModelAlignment {
    /// Correlates `reference` and `model` over `batches` and finds the model's permutation.
    public static func align(reference: BertEncoder, model: BertEncoder, batches: some Sequence<EncoderInput>,
                             options: AlignmentOptions, dataName: String) throws -> AlignmentOutcome {
        try search(correlate(reference: reference, model: model, batches: batches, dataName: dataName), config: model.config, options: options)
    }

    /// The correlations of A's and B's units, and how many texts and tokens gave them.
    public struct Correlations: Sendable {
        public var byPoint: [AlignmentPoint: Tensor<Double>]
        public var tokens: Int
        public var texts: Int
    }

    /// The one pass over the data every choice of permutation is searched from.
    public static func correlate(reference: BertEncoder, model: BertEncoder, batches: some Sequence<EncoderInput>,
                                 dataName: String) throws -> Correlations {
        let correlation = try ActivationCorrelation(reference: reference, model: model)
        var texts = 0
        for batch in batches {
            try correlation.add(batch)
            texts += batch.batchSize
        }
        guard correlation.tokens > 0 else { throw AlignmentError.noActivations(path: dataName) }
        return Correlations(byPoint: correlation.correlations(), tokens: correlation.tokens, texts: texts)
    }

    /// B's permutation under `options`' choices, from correlations already taken.
    public static func search(_ c: Correlations, config: BertConfig, options: AlignmentOptions) throws -> AlignmentOutcome {
        let p = try PermutationSearch.permutation(config: config, correlations: c.byPoint, attention: options.attention, residual: options.residual,
                                                  feedForward: options.feedForward)
        let points = c.byPoint.keys.sorted().map { point in
            AlignmentOutcome.PointSummary(point: point.description,
                                          before: PermutationSearch.matchedCorrelation(c.byPoint[point]!, Permutation(identity: c.byPoint[point]!.rows)),
                                          after: PermutationSearch.matchedCorrelation(c.byPoint[point]!, p.permutation(at: point)))
        }
        return AlignmentOutcome(permutation: p, tokens: c.tokens, texts: c.texts, points: points)
    }

    /// Aligns the model directory `model` to `reference` on the texts of `data` and writes the
    /// permuted model to `out` (config, vocabulary and tokenizer files copied from `model`);
    /// each of `variants` (other attention/residual/feed-forward choices) is searched from the same
    /// correlations and written to its own directory. Returns the outcome for `out`, then each variant's.
    @discardableResult
    public static func alignDirectories(reference: String, model: String, data: String, out: String,
                                        options: AlignmentOptions,
                                        variants: [(options: AlignmentOptions, out: String)] = []) throws -> [AlignmentOutcome] {
        let a = try ModelDirectory.load(reference), b = try ModelDirectory.load(model)
        try SameArchitecture.requireSameVocabulary(reference: reference, model: model)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: reference + "/vocab.txt")
        let batches = try ContributionAlignment.batches(data: data, tokenizer: tokenizer, maxPositions: a.config.maxPositionEmbeddings, options: options)
        let correlations = try correlate(reference: a, model: b, batches: batches, dataName: data)

        let tensors = try ModelFiles.loadModel(directory: model).tensors
        var outcomes: [AlignmentOutcome] = []
        for (choice, directory) in [(options, out)] + variants {
            let outcome = try search(correlations, config: b.config, options: choice)
            let permuted = try outcome.permutation.permuted(tensors)
            let report = Report(reference: reference, model: model, data: data, attention: choice.attention.rawValue,
                                residual: choice.residual.rawValue, feedForward: choice.feedForward.rawValue, texts: outcome.texts,
                                tokens: outcome.tokens, points: outcome.points, permutation: .init(outcome.permutation))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try MergedModelDirectory.write(tensors: permuted, metadata: ["format": "pt", "fedmerge.aligned": "true"], to: directory,
                                           sideFilesFrom: model, files: [("alignment.json", try encoder.encode(report))])
            outcomes.append(outcome)
        }
        return outcomes
    }

    /// alignment.json.
    struct Report: Codable {
        struct Layer: Codable { var queryKey, value, feedForward, attentionResidual, outputResidual: [Int] }
        struct Permutations: Codable {
            var embeddings: [Int]
            var layers: [Layer]
            init(_ p: BertPermutation) {
                embeddings = p.embeddings.indices
                layers = p.layers.map {
                    Layer(queryKey: $0.queryKey.indices, value: $0.value.indices, feedForward: $0.feedForward.indices,
                          attentionResidual: $0.attentionResidual.indices, outputResidual: $0.outputResidual.indices)
                }
            }
        }
        var reference, model, data, attention, residual, feedForward: String
        var texts, tokens: Int
        var points: [AlignmentOutcome.PointSummary]
        /// Gathers: unit i of the written model is unit permutation[i] of `model`.
        var permutation: Permutations
    }
}
