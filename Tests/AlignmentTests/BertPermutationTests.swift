// Tests of BertPermutation.swift: a model with random FF, head, within-head and residual
// permutations computes the same function (tiny random BERTs under both poolings, and the real
// MiniLM); a permutation that crosses heads does not; a permuted Gram with a permuted model
// gives the permuted RegMean merge.

import LinAlg
import Merge
import Model
import RoundContract
import XCTest
@testable import Alignment

final class BertPermutationTests: XCTestCase {
    /// Runs both models on the same batches; hidden states are compared through the residual
    /// gather (unit i of the permuted model is unit P[i] of the original), logits directly.
    private func assertSameFunction(_ original: BertEncoder, _ permuted: BertEncoder, residual: Permutation, seed: UInt64,
                                    tolerance: Float = 1e-5, file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SplitMix64(seed: seed)
        let C = original.config.hiddenSize
        for _ in 0..<3 {
            let input = AlignmentFixtures.randomBatch(original.config, batch: 4, maxLength: min(12, original.config.maxPositionEmbeddings), rng: &rng)
            try original.forward(input)
            let hidden = original.lastHiddenState.storage
            let logits = original.config.numLabels > 0 ? original.logits.storage : []
            try permuted.forward(input)
            let hiddenP = permuted.lastHiddenState.storage
            var gathered = hidden
            for r in 0..<input.rows { for i in 0..<C { gathered[r * C + i] = hidden[r * C + residual[i]] } }
            XCTAssertLessThanOrEqual(maxRelativeDifference(hiddenP, gathered), tolerance, "hidden states", file: file, line: line)
            if !logits.isEmpty {
                XCTAssertLessThanOrEqual(maxRelativeDifference(permuted.logits.storage, logits), tolerance, "logits", file: file, line: line)
            }
        }
    }

    func testRandomPermutationsPreserveTheFunctionOfTinyModels() throws {
        for (k, pooling) in [BertConfig.Pooling.cls, .mean].enumerated() {
            let config = AlignmentFixtures.tinyConfig(pooling: pooling)
            let model = AlignmentFixtures.randomModel(config, seed: 5 + UInt64(k))
            var rng = SplitMix64(seed: 100 + UInt64(k))
            let p = AlignmentFixtures.randomPermutation(config, parts: .all, rng: &rng)
            XCTAssertFalse(p.embeddings.isIdentity)
            let permuted = AlignmentFixtures.copy(model)
            try p.apply(to: permuted)
            XCTAssertNotEqual(permuted.parameters.tensor("encoder.layer.1.attention.self.value.weight"),
                              model.parameters.tensor("encoder.layer.1.attention.self.value.weight"))
            try assertSameFunction(model, permuted, residual: p.embeddings, seed: 7)
            // Undoing it restores every parameter bit for bit.
            try p.inverse.apply(to: permuted)
            for e in model.parameters.entries {
                XCTAssertEqual(permuted.parameters.tensor(e.name), model.parameters.tensor(e.name), e.name)
            }
        }
    }

    func testPermutationsCrossingHeadsOrSkippingAConsumerChangeTheFunction() throws {
        // The check above must be able to fail: Q/K features swapped between two heads, or a
        // residual P the pooler's columns do not follow, change the outputs.
        let config = AlignmentFixtures.tinyConfig()
        let model = AlignmentFixtures.randomModel(config, seed: 9)
        var crossing = BertPermutation(identity: config)
        var swap = Array(0..<config.hiddenSize)
        swap.swapAt(0, config.headSize)
        crossing.layers[0].queryKey = try Permutation(swap)
        let a = AlignmentFixtures.copy(model)
        try crossing.apply(to: a)
        var rng = SplitMix64(seed: 3)
        let input = AlignmentFixtures.randomBatch(config, batch: 4, maxLength: 12, rng: &rng)
        try model.forward(input)
        let logits = model.logits.storage
        try a.forward(input)
        XCTAssertGreaterThan(maxRelativeDifference(a.logits.storage, logits), 1e-3)

        var residualOnly = BertPermutation(identity: config)
        residualOnly.setResidual(Permutation(random: config.hiddenSize, using: &rng))
        let b = AlignmentFixtures.copy(model)
        try residualOnly.apply(to: b)
        b.parameters.set("pooler.dense.weight", from: model.parameters.tensor("pooler.dense.weight")!)
        try b.forward(input)
        XCTAssertGreaterThan(maxRelativeDifference(b.logits.storage, logits), 1e-3)
    }

    func testRandomPermutationsPreserveMaskedLMLogits() throws {
        var config = AlignmentFixtures.tinyConfig(labels: 0)
        config.maskedLMHead = true
        let model = AlignmentFixtures.randomModel(config, seed: 21)
        var rng = SplitMix64(seed: 22)
        let p = AlignmentFixtures.randomPermutation(config, parts: .all, rng: &rng)
        let permuted = AlignmentFixtures.copy(model)
        try p.apply(to: permuted)
        let dense = "cls.predictions.transform.dense.weight"
        XCTAssertNotEqual(permuted.parameters.tensor(dense), model.parameters.tensor(dense))
        XCTAssertEqual(permuted.parameters.tensor("cls.predictions.bias"), model.parameters.tensor("cls.predictions.bias"))
        // A transform whose outputs stay put while the tied decoder's columns move: not the same function.
        let untied = AlignmentFixtures.copy(permuted)
        untied.parameters.set(dense, from: try BertPermutation.gather(model.parameters.tensor(dense)!, rows: nil, columns: p.lastResidual, name: dense))
        let masking = TokenMasking(maskID: 4, vocabularySize: config.vocabSize, specialIDs: [0, 2, 3])
        for _ in 0..<3 {
            let batch = masking.mask(AlignmentFixtures.randomBatch(config, batch: 4, maxLength: 12, rng: &rng), rng: &rng)
            let logits = try model.maskedLMLogits(batch).storage
            XCTAssertGreaterThan(logits.count, 0)
            XCTAssertLessThanOrEqual(maxRelativeDifference(try permuted.maskedLMLogits(batch).storage, logits), 1e-5)
            XCTAssertGreaterThan(maxRelativeDifference(try untied.maskedLMLogits(batch).storage, logits), 1e-3)
        }
        try p.inverse.apply(to: permuted)
        for e in model.parameters.entries { XCTAssertEqual(permuted.parameters.tensor(e.name), model.parameters.tensor(e.name), e.name) }
    }

    func testRandomPermutationsPreserveTheFunctionOfMiniLM() throws {
        let model = try ModelDirectory.load(try AlignmentFixtures.miniLM())
        var rng = SplitMix64(seed: 11)
        let p = AlignmentFixtures.randomPermutation(model.config, parts: .all, rng: &rng)
        let permuted = AlignmentFixtures.copy(model)
        try p.apply(to: permuted)
        try assertSameFunction(model, permuted, residual: p.embeddings, seed: 12)
    }

    func testUnknownTensorsAndWrongShapesAreNamed() throws {
        let p = BertPermutation(identity: AlignmentFixtures.tinyConfig())
        XCTAssertThrowsError(try p.axes(of: "bert.encoder.layer.7.output.dense.weight")) {
            XCTAssertEqual($0 as? AlignmentError, .unknownParameter(name: "bert.encoder.layer.7.output.dense.weight"))
        }
        XCTAssertThrowsError(try p.axes(of: "lm_head.decoder.weight")) {
            XCTAssertEqual($0 as? AlignmentError, .unknownParameter(name: "lm_head.decoder.weight"))
        }
        XCTAssertThrowsError(try p.permuted("bert.embeddings.LayerNorm.weight", Tensor(shape: [15]))) {
            XCTAssertEqual($0 as? AlignmentError, .shapeMismatch(tensor: "bert.embeddings.LayerNorm.weight", expected: [16], actual: [15]))
        }
        XCTAssertThrowsError(try Permutation([0, 2, 2])) {
            XCTAssertEqual($0 as? AlignmentError, .invalidPermutation(what: "permutation", reason: "2 appears twice"))
        }
    }

    /// Model tensors and Grams as a saved model and stats.safetensors name them.
    private func namedModel(_ m: BertEncoder) -> NamedTensors {
        try! NamedTensors(m.parameters.entries.map { (ModelDirectory.savedName($0.name), m.parameters.tensor($0.name)!) })
    }

    private func grams(_ m: BertEncoder, seed: UInt64) throws -> NamedStatistics {
        let collector = GramCollector()
        m.collectors = [collector]
        defer { m.collectors = [] }
        var rng = SplitMix64(seed: seed)
        for _ in 0..<3 { try m.forward(AlignmentFixtures.randomBatch(m.config, batch: 6, maxLength: 12, rng: &rng)) }
        let out = collector.export(naming: ModelDirectory.savedName)
        return NamedStatistics(tensors: try NamedTensors(out.tensors), metadata: out.metadata)
    }

    func testPermutedGramsGiveThePermutedRegMeanMerge() throws {
        // Two fine-tunes of one base (mean pooling, so the classifier's Gram is residual too).
        let config = AlignmentFixtures.tinyConfig(pooling: .mean)
        let base = AlignmentFixtures.randomModel(config, seed: 21)
        var rng = SplitMix64(seed: 22)
        let models = (0..<2).map { _ -> BertEncoder in
            let m = AlignmentFixtures.copy(base)
            for e in m.parameters.entries {
                var t = m.parameters.tensor(e.name)!
                for i in 0..<t.count { t.storage[i] += Float(0.05 * rng.nextNormal()) }
                m.parameters.set(e.name, from: t)
            }
            return m
        }
        let inputs = try models.enumerated().map { (namedModel($0.element), try grams($0.element, seed: 30 + UInt64($0.offset))) }
        XCTAssertNotNil(inputs[0].1.tensors["classifier.gram"])
        let p = AlignmentFixtures.randomPermutation(config, parts: .all, rng: &rng)

        let mergedThenPermuted = try p.permuted(try RegMean().merge(
            models: inputs.enumerated().map { ("m\($0.offset)", $0.element.0, $0.element.1, 1) }, parameters: [:]).tensors)
        let permutedThenMerged = try RegMean().merge(
            models: try inputs.enumerated().map { ("m\($0.offset)", try p.permuted($0.element.0), try p.permuted($0.element.1), 1) },
            parameters: [:]).tensors
        XCTAssertEqual(permutedThenMerged.names, mergedThenPermuted.names)
        for name in mergedThenPermuted.names {
            XCTAssertLessThanOrEqual(maxRelativeDifference(permutedThenMerged[name]!.storage, mergedThenPermuted[name]!.storage), 1e-5, name)
        }
        // Without permuting the Grams the merge is a different one (the test can fail).
        let stale = try RegMean().merge(
            models: try inputs.enumerated().map { ("m\($0.offset)", try p.permuted($0.element.0), $0.element.1, 1) },
            parameters: [:]).tensors
        XCTAssertGreaterThan(maxRelativeDifference(stale["bert.encoder.layer.0.intermediate.dense.weight"]!.storage,
                                                   mergedThenPermuted["bert.encoder.layer.0.intermediate.dense.weight"]!.storage), 1e-3)
    }
}
