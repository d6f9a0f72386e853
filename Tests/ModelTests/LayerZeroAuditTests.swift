// The privacy audit (Model/Privacy): a Gram's rank-one capacity against its closed form, the
// non-negative least squares against a known decomposition, and the whole audit of a
// synthetic agent whose text is a known multiset of tokens — recovered exactly from the
// stats.safetensors a real statistics pass wrote.

import Foundation
import LinAlg
@testable import Model
import SafeTensors
import XCTest

final class LayerZeroAuditTests: XCTestCase {
    /// Unit vectors e_i scaled, in d dimensions.
    private func basis(_ d: Int, _ i: Int, _ scale: Float = 1) -> [Float] {
        var v = [Float](repeating: 0, count: d); v[i] = scale; return v
    }

    private func gram(_ terms: [(count: Float, v: [Float])], d: Int) -> Tensor<Float> {
        var g = Tensor<Float>(shape: [d, d])
        for (c, v) in terms { for i in 0..<d { for j in 0..<d { g.storage[i * d + j] += c * v[i] * v[j] } } }
        return g
    }

    func testCapacityIsTheLargestCountTheGramCanHold() throws {
        // G = 3 vvᵀ + uuᵀ with v ⟂ u: G − c vvᵀ ⪰ 0 exactly for c ≤ 3, so capacity(v) = 3,
        // capacity(u) = 1, and a vector outside span{u, v} has capacity ≈ 0 (≤ μ/‖r‖²).
        let d = 6
        let v = basis(d, 0, 2), u = zip(basis(d, 1), basis(d, 2)).map { ($0 + $1) / Float(2).squareRoot() }
        let outside = basis(d, 4)
        let mixed = zip(v, outside).map { $0 + $1 }                 // half in the range, half outside
        let capacity = try RankOneCapacity(gram: gram([(3, v), (1, u)], d: d))
        let caps = capacity.capacities(v + u + outside + mixed, count: 4)
        XCTAssertEqual(caps[0], 3, accuracy: 3e-4)
        XCTAssertEqual(caps[1], 1, accuracy: 3e-4)                  // 1 + μ, μ = 1e-5·λ_max = 1.2e-4
        XCTAssertLessThan(caps[2], 1e-3)
        XCTAssertLessThan(caps[3], 1e-3)
    }

    func testNNLSRecoversAKnownDecompositionAndZeroesDecoys() {
        var rng = SplitMix64(seed: 5)
        let d = 8, m = 5
        let vectors = (0..<(m + 3)).map { _ in (0..<d).map { _ in Float(rng.nextNormal()) } }
        let counts: [Float] = [1, 4, 2, 7, 3]                        // the last 3 vectors are decoys
        let g = gram((0..<m).map { (counts[$0], vectors[$0]) }, d: d)
        let nnls = RankOneNNLS(gram: g, vectors: vectors.flatMap { $0 }, count: m + 3, maxSweeps: 5000, tolerance: 1e-10)
        for i in 0..<m { XCTAssertEqual(nnls.coefficients[i], Double(counts[i]), accuracy: 1e-3) }
        for i in m..<(m + 3) { XCTAssertEqual(nnls.coefficients[i], 0, accuracy: 1e-3) }
        XCTAssertLessThan(nnls.relativeResidual, 1e-4)
    }

    /// A tiny BERT with a word vocabulary, hidden 48 (more than the distinct token × position
    /// pairs below, so the Gram is rank-deficient, as a small agent's is).
    private func syntheticAgent() throws -> (BertEncoder, WordPieceTokenizer, LabeledDataset) {
        let words = ["the", "a", "movie", "plot", "good", "bad", "great", "dull", "film", "story", "actor", "scene",
                     "was", "is", "very", "not", "fun", "long", "short", "music", "end", "start", "slow", "fast"]
        let tokenizer = try WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)
        let config = BertConfig(vocabSize: 5 + words.count, hiddenSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
                                intermediateSize: 64, maxPositionEmbeddings: 16, labels: ["negative", "positive"])
        let model = BertEncoder(config: config, seed: 11)
        // A known multiset: "bad" twice at position 1 and once at 3, "the" three times at 1, …
        let texts = ["the movie was good", "bad plot", "the film is bad", "the story was very dull", "bad music", "great actor"]
        let data = LabeledDataset(examples: texts.enumerated().map { LabeledExample(text: $1, labels: [$0 % 2]) },
                                  labelNames: ["negative", "positive"], isMultiLabel: false)
        return (model, tokenizer, data)
    }

    func testLayerZeroAuditRecoversAKnownMultisetExactly() throws {
        let (model, tokenizer, data) = try syntheticAgent()
        var plan = StatisticsPlan()
        plan.gramBatches = 1; plan.batchSize = 8; plan.maxLength = 16
        let path = NSTemporaryDirectory() + "audit-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try StatisticsRun.write(model: model, tokenizer: tokenizer, data: data, plan: plan, to: path, showProgress: false)

        // The truth, counted from the text (not from the Gram): 6 sentences, 26 rows.
        let truth = GramSampleTokens(data: data, tokenizer: tokenizer, plan: plan)
        XCTAssertEqual(truth.examples, 6)
        XCTAssertEqual(truth.tokenCounts[tokenizer.id(for: "bad")!], 3)
        XCTAssertEqual(truth.pairCounts[.init(token: tokenizer.id(for: "the")!, position: 1)], 3)

        let report = try StatisticsAudit.run(model: model, modelPath: "(tiny)", tokenizer: tokenizer, stats: SafeTensorsFile(path: path),
                                             positions: 16, deepLayer: 1, truth: truth)
        XCTAssertEqual(report.layer0.exactMultiset, true)
        let score = try XCTUnwrap(report.layer0.score)
        XCTAssertEqual(score.distinct, 14)
        XCTAssertEqual(score.recallAtDistinct, 1)
        XCTAssertEqual(score.exactCounts, 1)
        XCTAssertEqual(score.spearman, 1, accuracy: 1e-9)
        XCTAssertEqual(report.layer0.screenedPairs, 29 * 16)
        // "the" and "bad" occur 3 times each, every other token at most twice.
        XCTAssertEqual(Set(report.layer0.top.prefix(2).map(\.token)), ["the", "bad"])
        for t in report.layer0.top.prefix(2) { XCTAssertEqual(t.recovered ?? 0, 3, accuracy: 1e-3) }
        XCTAssertEqual(report.layer0.nnlsConverged, true)
        // The deeper layer is scored too (a ranking over the whole vocabulary).
        XCTAssertNotNil(report.deep?.score)
        XCTAssertEqual(report.deep?.linear, "bert.encoder.layer.1.attention.self.query")
    }

    func testAuditNamesAMissingGram() throws {
        let (model, tokenizer, _) = try syntheticAgent()
        let path = NSTemporaryDirectory() + "empty-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SafeTensorsWriter.write(tensors: [("x", Tensor<Float>(shape: [1]))], metadata: [:], to: path)
        XCTAssertThrowsError(try StatisticsAudit.run(model: model, modelPath: "(tiny)", tokenizer: tokenizer, stats: SafeTensorsFile(path: path),
                                                     positions: 16, deepLayer: nil, truth: nil)) { error in
            XCTAssertEqual(error as? AuditError, .missingGram(file: path, linear: "bert.encoder.layer.0.attention.self.query"))
        }
    }
}
