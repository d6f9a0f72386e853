// Tests of aligning statistics with their model (the aggregator's `align:`, issue 15 item 4):
// the Gram and Fisher a permuted model really produces on the same inputs are P G Pᵀ and the
// permuted Fisher; and RegMean of A with a permuted copy of B, aligned back by the searched
// permutation with its measured Gram permuted alike, is RegMean of A and B.

import LinAlg
import Merge
@testable import Model
import RoundContract
import XCTest
@testable import Alignment

final class StatisticsAlignmentTests: XCTestCase {
    /// The statistics a model produces on `batches` as stats.safetensors names them: Grams of
    /// every linear's input (forward passes), and with `fisherSequences` the exact diagonal
    /// Fisher over those single examples.
    private func statistics(_ m: BertEncoder, batches: [EncoderInput], fisherSequences: [EncoderInput] = []) throws -> NamedStatistics {
        let collector = GramCollector()
        m.collectors = [collector]
        for batch in batches { try m.forward(batch) }
        m.collectors = []
        let grams = collector.export(naming: ModelDirectory.savedName)
        var tensors = try NamedTensors(grams.tensors)
        if !fisherSequences.isEmpty {
            let fisher = FisherCollector(parameters: m.parameters)
            var rng = SplitMix64(seed: 1)
            for input in fisherSequences {
                try StatisticsRun.backwardPasses(model: m, input: input, plan: StatisticsPlan(), rng: &rng) { fisher.observeParameterGradients(m.parameters, weight: $0) }
                fisher.finishExample()
            }
            for e in m.parameters.entries { tensors.set(StatisticKey.fisher(ModelDirectory.savedName(e.name)), fisher.fisher(of: e.name)!) }
        }
        return NamedStatistics(tensors: tensors, metadata: grams.metadata)
    }

    private func namedModel(_ m: BertEncoder) -> NamedTensors {
        try! NamedTensors(m.parameters.entries.map { (ModelDirectory.savedName($0.name), m.parameters.tensor($0.name)!) })
    }

    /// max |a − b| / max(max |b|, floor) over one tensor.
    private func relative(_ a: Tensor<Float>, _ b: Tensor<Float>, floor: Double = 1e-30) -> Double {
        let scale = b.storage.map { abs(Double($0)) }.max() ?? 0
        return zip(a.storage, b.storage).map { abs(Double($0) - Double($1)) }.max()! / max(scale, floor)
    }

    func testStatisticsOfAPermutedModelAreTheModelsStatisticsPermuted() throws {
        for (k, pooling) in [BertConfig.Pooling.cls, .mean].enumerated() {
            let config = AlignmentFixtures.tinyConfig(pooling: pooling)
            let model = AlignmentFixtures.randomModel(config, seed: 40 + UInt64(k))
            var rng = SplitMix64(seed: 50 + UInt64(k))
            let p = AlignmentFixtures.randomPermutation(config, parts: .all, rng: &rng)
            let permutedModel = AlignmentFixtures.copy(model)
            try p.apply(to: permutedModel)
            let batches = (0..<3).map { _ in AlignmentFixtures.randomBatch(config, batch: 5, maxLength: 12, rng: &rng) }
            let singles = (0..<6).map { _ in AlignmentFixtures.randomBatch(config, batch: 1, maxLength: 12, rng: &rng) }

            let measured = try statistics(permutedModel, batches: batches, fisherSequences: singles)
            let original = try statistics(model, batches: batches, fisherSequences: singles)
            let predicted = try p.permuted(original)
            XCTAssertEqual(Set(predicted.tensors.names), Set(measured.tensors.names))
            XCTAssertEqual(predicted.metadata, measured.metadata, "row counts and same_as are unchanged by a permutation")
            let grams = measured.tensors.names.filter { $0.hasSuffix(StatisticKey.gramSuffix) }
            let fishers = measured.tensors.names.filter { $0.hasSuffix(StatisticKey.fisherSuffix) }
            XCTAssertGreaterThanOrEqual(grams.count, 2 * 4 + 1, "Q (shared by K, V), W_O, W_1, W_2 per layer, pooler, classifier")
            XCTAssertEqual(fishers.count, model.parameters.entries.count)
            // The key bias's Fisher is ~0 (softmax ignores a score added to every key alike): measure
            // each Fisher against the largest Fisher entry of the model, not its own rounding noise.
            let fisherScale = fishers.map { measured.tensors[$0]!.storage.map { abs(Double($0)) }.max()! }.max()!
            var moved = 0, worst = 0.0
            for name in measured.tensors.names {
                let floor = name.hasSuffix(StatisticKey.fisherSuffix) ? 1e-6 * fisherScale : 1e-30
                // fp32 forward passes of a permuted model round differently: ~1e-6 of the largest entry.
                let difference = relative(predicted.tensors[name]!, measured.tensors[name]!, floor: floor)
                worst = max(worst, difference)
                XCTAssertLessThanOrEqual(difference, 1e-4, "\(pooling) \(name)")
                if relative(original.tensors[name]!, measured.tensors[name]!, floor: floor) > 1e-2 { moved += 1 }
            }
            print("\(pooling): permuted statistics vs the permuted model's measured ones: max relative difference \(worst)")
            // The check can fail: the unpermuted statistics are not the permuted model's.
            XCTAssertGreaterThan(moved, grams.count + fishers.count / 2, "\(pooling): most statistics move under the permutation")
        }
    }

    func testRegMeanWithAnAlignedPermutedModelAndItsMeasuredGramsIsRegMeanOfTheIdenticalInitPair() throws {
        // A and B: two fine-tunes of one base (mean pooling: the classifier's Gram is residual too).
        let config = AlignmentFixtures.tinyConfig(pooling: .mean)
        let base = AlignmentFixtures.randomModel(config, seed: 61)
        var rng = SplitMix64(seed: 62)
        let (a, b) = (AlignmentFixtures.copy(base), AlignmentFixtures.copy(base))
        for m in [a, b] {
            for e in m.parameters.entries {
                var t = m.parameters.tensor(e.name)!
                for i in 0..<t.count { t.storage[i] += Float(0.02 * rng.nextNormal()) }
                m.parameters.set(e.name, from: t)
            }
        }
        // P(B): B with a random function-preserving permutation of every kind of unit.
        let p = AlignmentFixtures.randomPermutation(config, parts: .all, rng: &rng)
        let pb = AlignmentFixtures.copy(b)
        try p.apply(to: pb)

        // Grams measured by running each model (P(B)'s by running P(B) itself) on the same data.
        let gramData = (0..<4).map { _ in AlignmentFixtures.randomBatch(config, batch: 6, maxLength: 12, rng: &rng) }
        let (ga, gb, gpb) = (try statistics(a, batches: gramData), try statistics(b, batches: gramData), try statistics(pb, batches: gramData))

        // The aggregator's step: align P(B) to A on other (public) data, permute its weights and Grams.
        let alignData = (0..<24).map { _ in AlignmentFixtures.randomBatch(config, batch: 8, maxLength: 12, rng: &rng) }
        let q = try ModelAlignment.align(reference: a, model: pb, batches: alignData, options: AlignmentOptions(), dataName: "random tokens").permutation
        let alignedWeights = try q.permuted(namedModel(pb))
        for name in alignedWeights.names { XCTAssertEqual(alignedWeights[name], namedModel(b)[name], "alignment undoes P exactly: \(name)") }

        let truth = try RegMean().merge(models: [("a", namedModel(a), ga, 1), ("b", namedModel(b), gb, 1)], parameters: [:]).tensors
        let aligned = try RegMean().merge(models: [("a", namedModel(a), ga, 1), ("b", alignedWeights, try q.permuted(gpb), 1)], parameters: [:]).tensors
        XCTAssertEqual(aligned.names, truth.names)
        var worst = 0.0
        for name in truth.names { worst = max(worst, relative(aligned[name]!, truth[name]!)) }
        // fp32 statistics (ε = 1.2e-7): the measured Gram of P(B) differs from P·G_B·Pᵀ by
        // rounding, which the RegMean solve carries through; measured ~1e-6 (see the report).
        print("aligned RegMean vs RegMean of the identical-init pair: max relative difference \(worst)")
        XCTAssertLessThanOrEqual(worst, 1e-5)
        // Without permuting P(B)'s Grams back, the merge is another one (the check can fail).
        let stale = try RegMean().merge(models: [("a", namedModel(a), ga, 1), ("b", alignedWeights, gpb, 1)], parameters: [:]).tensors
        XCTAssertGreaterThan(relative(stale["bert.encoder.layer.0.intermediate.dense.weight"]!, truth["bert.encoder.layer.0.intermediate.dense.weight"]!), 1e-3)
    }
}
