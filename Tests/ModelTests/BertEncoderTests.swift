// Full-model checks of BertEncoder on a tiny random config: the backward through every kind of
// parameter matches finite differences (with and without dropout, CLS and mean pooling,
// single- and multi-label), and padding does not change the real tokens' outputs.

import LinAlg
@testable import Model
import XCTest

final class BertEncoderTests: XCTestCase {
    /// 2 layers, hidden 16, 2 heads, intermediate 32, vocab 40; weights N(0, 0.3²) so that
    /// gradients are well above Float rounding noise.
    func tinyModel(labels: Int, pooling: BertConfig.Pooling, problem: BertConfig.ProblemType, dropout: Float) -> BertEncoder {
        var c = BertConfig(vocabSize: 40, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 32,
                           maxPositionEmbeddings: 12, typeVocabSize: 2, hiddenDropoutProb: dropout,
                           attentionProbsDropoutProb: dropout, initializerRange: 0.3,
                           labels: (0..<labels).map { "L\($0)" }, problemType: problem, pooling: pooling)
        c.layerNormEps = 1e-5
        let m = BertEncoder(config: c, seed: 7)
        // Non-trivial LayerNorm affine parameters and biases, so their gradients are exercised.
        perturbBiasesAndLayerNorms(m)
        return m
    }

    let input = try! EncoderInput(sequences: [[2, 5, 9, 11, 3], [2, 7, 3], [2, 30, 31, 3]])

    func checkGradients(_ m: BertEncoder, targets: ClassificationTargets, training: Bool) throws {
        func loss() -> Double {
            m.dropoutRNG = SplitMix64(seed: 1234)
            m.parameters.zeroGradients()
            return try! m.lossAndGradients(input, targets: targets, training: training)
        }
        _ = loss()
        let analytic = Array(m.parameters.gradients)
        var rng = SplitMix64(seed: 5)
        var checked = 0, significant = 0
        let usedIDs = Set(input.inputIDs)
        for e in m.parameters.entries {
            // Three indices per tensor; for the word embeddings, inside rows the batch reads.
            for _ in 0..<3 {
                var i = Int(rng.next() % UInt64(e.count))
                if e.name == "embeddings.word_embeddings.weight" {
                    let row = Int(Array(usedIDs)[Int(rng.next() % UInt64(usedIDs.count))])
                    i = row * m.config.hiddenSize + Int(rng.next() % UInt64(m.config.hiddenSize))
                }
                if e.name == "embeddings.position_embeddings.weight" { i = i % (input.sequenceLength * m.config.hiddenSize) }
                let p = m.parameters.values.baseAddress! + e.offset + i
                let saved = p.pointee
                let eps: Float = 1e-2
                p.pointee = saved + eps
                let lp = loss()
                p.pointee = saved - eps
                let lm = loss()
                p.pointee = saved
                let numeric = (lp - lm) / Double(2 * eps)
                let a = Double(analytic[e.offset + i])
                // Float forward: rounding ≈ 1e-6/ε = 1e-4 and truncation ε²·L''' ≈ 1e-4, hence 1e-3 + 3%.
                XCTAssertEqual(a, numeric, accuracy: 1e-3 + 0.03 * abs(numeric), "\(e.name)[\(i)]")
                checked += 1
                if abs(numeric) > 1e-2 { significant += 1 }
            }
        }
        XCTAssertEqual(checked, 3 * m.parameters.entries.count)
        // Most sampled gradients are far from zero, so the comparison has teeth.
        XCTAssertGreaterThan(significant, checked / 2, "too few sizeable gradients to prove anything")
    }

    func testBackwardMatchesFiniteDifferencesWithDropoutAndCLSPooling() throws {
        let m = tinyModel(labels: 3, pooling: .cls, problem: .singleLabel, dropout: 0.2)
        try checkGradients(m, targets: .classes([0, 2, 1]), training: true)
    }

    func testBackwardMatchesFiniteDifferencesWithMeanPoolingMultiLabel() throws {
        let m = tinyModel(labels: 3, pooling: .mean, problem: .multiLabel, dropout: 0)
        try checkGradients(m, targets: .multiHot([1, 0, 1, 0, 0, 1, 1, 1, 0]), training: false)
    }

    func testPaddingDoesNotChangeRealTokenStates() throws {
        let m = tinyModel(labels: 2, pooling: .cls, problem: .singleLabel, dropout: 0.1)
        let alone = try EncoderInput(sequences: [[2, 7, 3]])
        try m.forward(alone)
        let a = m.lastHiddenState
        try m.forward(input) // example 1 is [2, 7, 3] padded to 5
        let b = m.lastHiddenState
        let C = m.config.hiddenSize, T = input.sequenceLength
        let padded = Array(b.storage[(1 * T * C)..<(1 * T * C + 3 * C)])
        XCTAssertEqual(Tensor(rows: [padded]).maxAbsDifference(Tensor(rows: [a.storage])), 0, accuracy: 1e-5)
    }

    func testInvalidTokenIDIsRejectedWithItsValue() throws {
        let m = tinyModel(labels: 2, pooling: .cls, problem: .singleLabel, dropout: 0)
        let bad = try EncoderInput(sequences: [[2, 40, 3]])
        XCTAssertThrowsError(try m.forward(bad)) { error in
            XCTAssertEqual(error as? EncoderError, .tokenOutOfRange(what: "input id", value: 40, limit: 40))
        }
    }

    /// The logits-only path (last layer over the [CLS] rows) gives the full forward's logits, with
    /// right padding and with a mask that is not a prefix (the general softmax path); mean pooling
    /// takes the full forward. Float rounding of differently shaped gemms: ≤ 1e-5.
    func testLogitsOnlyForwardGivesTheFullForwardsLogits() throws {
        let c = BertConfig(vocabSize: 30, hiddenSize: 8, numHiddenLayers: 3, numAttentionHeads: 2, intermediateSize: 16,
                           maxPositionEmbeddings: 16, initializerRange: 0.5, labels: ["a", "b", "c"])
        let m = BertEncoder(config: c, seed: 6)
        perturbBiasesAndLayerNorms(m)
        let padded = try EncoderInput(sequences: [[2, 4, 7, 3], [2, 9, 3], [2, 11, 12, 13, 14, 3]])
        let holes = try EncoderInput(batchSize: 2, sequenceLength: 5, inputIDs: [2, 5, 6, 7, 3, 2, 8, 9, 10, 3],
                                     attentionMask: [1, 0, 1, 1, 1, 1, 1, 0, 1, 1])
        for input in [padded, holes] {
            try m.forward(input)
            let full = m.logits.storage
            XCTAssertGreaterThan(full.map(abs).max()!, 0.1, "logits large enough for the comparison to mean something")
            try m.forwardLogits(input)
            let cls = m.logits.storage
            XCTAssertEqual(cls.count, full.count)
            for (x, y) in zip(cls, full) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        }
        var mc = c
        mc.pooling = .mean
        let mean = BertEncoder(config: mc, seed: 6)
        try mean.forward(padded)
        let full = mean.logits.storage
        try mean.forwardLogits(padded)
        XCTAssertEqual(mean.logits.storage, full)
    }

    func testInferenceRunsAllLayersInOneSetOfBuffersWithTheSameLogits() throws {
        let c = BertConfig(vocabSize: 30, hiddenSize: 8, numHiddenLayers: 3, numAttentionHeads: 2, intermediateSize: 16,
                           maxPositionEmbeddings: 16, initializerRange: 0.5, labels: ["a", "b"])
        let inference = BertEncoder(config: c, seed: 6), training = BertEncoder(config: c, seed: 6)
        let input = try EncoderInput(sequences: [[2, 4, 7, 3], [2, 9, 3], [2, 11, 12, 13, 14, 3]])
        try inference.forward(input)
        try training.forward(input, training: false, head: true, backward: true)
        // Only a forward a backward follows keeps per-layer activations.
        XCTAssertEqual(inference.acts.layers.count, 1)
        XCTAssertEqual(training.acts.layers.count, 3)
        XCTAssertEqual(inference.logits.storage, training.logits.storage)
        XCTAssertEqual(inference.lastHiddenState.storage, training.lastHiddenState.storage)
    }
}
