// Tests of BertMaskedLM.swift on a tiny random BERT with the masked-LM head: the loss's
// gradient matches finite differences for every kind of parameter, including both paths into
// the tied word embeddings (lookup and decoder), with and without dropout; the logits at the
// selected positions equal a plain-loop head applied to the full last hidden states.

import Foundation
import LinAlg
@testable import Model
import XCTest

final class BertMaskedLMTests: XCTestCase {
    /// 2 layers, hidden 16, 2 heads, intermediate 32, vocab 40; weights N(0, 0.3²), biases and
    /// LayerNorm affine parameters perturbed, so every gradient is well above rounding noise.
    static func tinyModel(dropout: Float = 0) -> BertEncoder {
        var c = BertConfig(vocabSize: 40, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 32,
                           maxPositionEmbeddings: 12, hiddenDropoutProb: dropout, attentionProbsDropoutProb: dropout,
                           initializerRange: 0.3, maskedLMHead: true)
        c.layerNormEps = 1e-5
        let m = BertEncoder(config: c, seed: 7)
        perturbBiasesAndLayerNorms(m)
        return m
    }

    /// Sequences [[2,5,9,11,3],[2,7,3],[2,30,31,3]] (T = 5) with positions 1, 3, 6, 12 selected:
    /// 5 → [MASK] (4), 11 → 9 (random), 7 unchanged, 31 → [MASK]. Word 7 is read as input and
    /// predicted; 31 and 5 are predicted only; 20 is neither (the decoder's softmax still reaches it).
    static func maskedBatch() -> MaskedTokens {
        var input = try! EncoderInput(sequences: [[2, 5, 9, 11, 3], [2, 7, 3], [2, 30, 31, 3]])
        input.inputIDs[1] = 4; input.inputIDs[3] = 9; input.inputIDs[12] = 4
        return MaskedTokens(input: input, positions: [1, 3, 6, 12], labels: [5, 11, 7, 31])
    }

    func checkGradients(_ m: BertEncoder, training: Bool) throws {
        let batch = Self.maskedBatch()
        func loss() -> Double {
            m.dropoutRNG = SplitMix64(seed: 1234)
            m.parameters.zeroGradients()
            return try! m.maskedLMLossAndGradients(batch, training: training)
        }
        _ = loss()
        let analytic = Array(m.parameters.gradients)
        let C = m.config.hiddenSize
        var rng = SplitMix64(seed: 5)
        var indices: [(String, Int)] = []
        for e in m.parameters.entries {
            for _ in 0..<3 {
                var i = Int(rng.next() % UInt64(e.count))
                if e.name == "embeddings.position_embeddings.weight" { i = i % (batch.input.sequenceLength * C) }
                indices.append((e.name, i))
            }
        }
        // The tied embedding's two paths: rows read and predicted (7), predicted only (31, 5),
        // read only ([MASK] 4, 9), neither (20): a few columns each.
        for row in [7, 31, 5, 4, 9, 20] { for c in [0, 5, 11] { indices.append(("embeddings.word_embeddings.weight", row * C + c)) } }
        var significant = 0
        for (name, i) in indices {
            let offset = m.parameters.entry(name)!.offset
            let p = m.parameters.values.baseAddress! + offset + i
            let saved = p.pointee, eps: Float = 1e-2
            p.pointee = saved + eps
            let lp = loss()
            p.pointee = saved - eps
            let lm = loss()
            p.pointee = saved
            let numeric = (lp - lm) / Double(2 * eps)
            let a = Double(analytic[offset + i])
            // Float forward: rounding ≈ 1e-6/ε = 1e-4 and truncation ε²·L''' ≈ 1e-4, hence 1e-3 + 3%.
            XCTAssertEqual(a, numeric, accuracy: 1e-3 + 0.03 * abs(numeric), "\(name)[\(i)]")
            if abs(numeric) > 1e-2 { significant += 1 }
        }
        XCTAssertTrue(m.parameters.entries.contains { $0.name == "cls.predictions.transform.LayerNorm.weight" })
        XCTAssertGreaterThan(significant, indices.count / 2, "too few sizeable gradients to prove anything")
    }

    func testGradientMatchesFiniteDifferencesIncludingBothWordEmbeddingPaths() throws {
        try checkGradients(Self.tinyModel(), training: false)
    }

    func testGradientMatchesFiniteDifferencesWithDropout() throws {
        try checkGradients(Self.tinyModel(dropout: 0.2), training: true)
    }

    func testLogitsAtSelectedPositionsEqualAPlainHeadOverAllPositions() throws {
        let m = Self.tinyModel()
        let batch = Self.maskedBatch()
        let logits = try m.maskedLMLogits(batch)
        XCTAssertEqual(logits.shape, [4, 40])
        try m.forward(batch.input, head: false)
        let hidden = m.lastHiddenState.storage
        let (C, V) = (16, 40)
        func t(_ n: String) -> [Float] { m.parameters.tensor(n)!.storage }
        let (w, b, g, beta, wte, bias) = (t("cls.predictions.transform.dense.weight"), t("cls.predictions.transform.dense.bias"),
                                          t("cls.predictions.transform.LayerNorm.weight"), t("cls.predictions.transform.LayerNorm.bias"),
                                          t("embeddings.word_embeddings.weight"), t("cls.predictions.bias"))
        for (k, r) in batch.positions.enumerated() {
            let x = (0..<C).map { Double(hidden[Int(r) * C + $0]) }
            let pre = (0..<C).map { o in (0..<C).reduce(Double(b[o])) { $0 + Double(w[o * C + $1]) * x[$1] } }
            let act = pre.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }
            let mean = act.reduce(0, +) / Double(C)
            let variance = act.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(C)
            let out = (0..<C).map { (act[$0] - mean) / (variance + 1e-5).squareRoot() * Double(g[$0]) + Double(beta[$0]) }
            for v in 0..<V {
                let expected = (0..<C).reduce(Double(bias[v])) { $0 + out[$1] * Double(wte[v * C + $1]) }
                XCTAssertEqual(Double(logits.storage[k * V + v]), expected, accuracy: 1e-4 * max(1, abs(expected)), "position \(r), id \(v)")
            }
        }
    }

    func testAModelWithoutTheHeadAndBadPositionsAreRefused() throws {
        let plain = BertEncoder(config: BertConfig(vocabSize: 40, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 32))
        XCTAssertThrowsError(try plain.maskedLMScore(Self.maskedBatch())) { XCTAssertEqual($0 as? EncoderError, .noMaskedLMHead) }
        var bad = Self.maskedBatch()
        bad.positions[2] = 15
        XCTAssertThrowsError(try Self.tinyModel().maskedLMScore(bad)) {
            XCTAssertEqual($0 as? EncoderError, .tokenOutOfRange(what: "masked position", value: 15, limit: 15))
        }
    }
}
