// Tests of LossBarrier.swift: the curve's end at λ = 1 is model A's own loss and at λ = 0 model
// B's, a model against itself has barrier 0, the midpoint is the Average merge method's model,
// and models with different labels are refused.

import LinAlg
import Merge
import Model
import XCTest
@testable import Alignment

final class LossBarrierTests: XCTestCase {
    private let words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "plot", "very", "not", "the", "a"]

    private func setting(seedA: UInt64, seedB: UInt64) throws -> (BertEncoder, BertEncoder, WordPieceTokenizer, LabeledDataset) {
        let config = BertConfig(vocabSize: words.count, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 24,
                                maxPositionEmbeddings: 16, labels: ["neg", "pos"])
        let tokenizer = try WordPieceTokenizer(tokens: words)
        var rng = SplitMix64(seed: 3)
        let examples = (0..<40).map { _ in
            LabeledExample(text: (0..<(2 + Int(rng.next() % 6))).map { _ in words[4 + Int(rng.next() % 8)] }.joined(separator: " "),
                           labels: [Int(rng.next() % 2)])
        }
        return (AlignmentFixtures.randomModel(config, seed: seedA), AlignmentFixtures.randomModel(config, seed: seedB), tokenizer,
                LabeledDataset(examples: examples, labelNames: ["neg", "pos"], isMultiLabel: false))
    }

    func testEndsAreTheModelsOwnLossesAndTheMidpointIsTheirAverage() throws {
        let (a, b, tokenizer, data) = try setting(seedA: 1, seedB: 2)
        let curve = try LossBarrier.curve(a: a, b: b, tokenizer: tokenizer, data: data, count: 11)
        XCTAssertEqual(curve.points.map(\.lambda), (0...10).map { Double($0) / 10 })
        XCTAssertEqual(curve.points.last!.loss, try Evaluation.evaluate(a, tokenizer: tokenizer, data: data).meanLoss)
        XCTAssertEqual(curve.points.first!.loss, try Evaluation.evaluate(b, tokenizer: tokenizer, data: data).meanLoss)
        XCTAssertNotEqual(curve.points.first!.loss, curve.points.last!.loss)

        // The midpoint is the model the Average merge method makes of A and B.
        func named(_ m: BertEncoder) -> NamedTensors { try! NamedTensors(m.parameters.entries.map { ($0.name, m.parameters.tensor($0.name)!) }) }
        let average = try Average().merge(models: [("a", named(a), NamedStatistics(), 1), ("b", named(b), NamedStatistics(), 1)], parameters: [:])
        let mid = BertEncoder(config: a.config, seed: 0, randomize: false)
        for e in mid.parameters.entries { mid.parameters.set(e.name, from: average.tensors[e.name]!) }
        XCTAssertEqual(curve.points[5].loss, try Evaluation.evaluate(mid, tokenizer: tokenizer, data: data).meanLoss, accuracy: 1e-5)
        let losses = curve.points.map(\.loss)
        XCTAssertEqual(curve.barrier, losses.max()! - (losses[0] + losses[10]) / 2)
        let chord = (0...10).map { losses[$0] - (Double($0) / 10 * losses[10] + (1 - Double($0) / 10) * losses[0]) }
        XCTAssertEqual(curve.excessOverChord, chord.max()!, accuracy: 1e-12)
        XCTAssertTrue(curve.csv().hasPrefix("lambda,loss,accuracy,excess_over_chord\n0.00,"))
        XCTAssertEqual(curve.csv().split(separator: "\n").count, 12)
    }

    func testAModelAgainstItselfHasNoBarrier() throws {
        let (a, _, tokenizer, data) = try setting(seedA: 4, seedB: 5)
        let curve = try LossBarrier.curve(a: a, b: AlignmentFixtures.copy(a), tokenizer: tokenizer, data: data, count: 11)
        // λa + (1−λ)a differs from a by rounding only.
        XCTAssertEqual(curve.barrier, 0, accuracy: 1e-5)
        XCTAssertEqual(curve.excessOverChord, 0, accuracy: 1e-5)
        for p in curve.points { XCTAssertEqual(p.loss, curve.points[0].loss, accuracy: 1e-5) }
    }

    func testDifferentLabelsAreRefused() throws {
        let (a, _, tokenizer, data) = try setting(seedA: 6, seedB: 7)
        var c = a.config
        c.labels = ["pos", "neg"]
        XCTAssertThrowsError(try LossBarrier.curve(a: a, b: AlignmentFixtures.randomModel(c, seed: 8), tokenizer: tokenizer, data: data)) {
            XCTAssertEqual($0 as? AlignmentError, .labelsMismatch(reference: ["neg", "pos"], model: ["pos", "neg"]))
        }
    }
}
