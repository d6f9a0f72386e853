// Fine-tuning parity with PyTorch + transformers: the first six steps of transformers' recipe
// (AdamW, decay off for biases/LayerNorm, linear warmup/decay, clipping to norm 1, mean
// cross-entropy, CLS → pooler → classifier) on the real MiniLM-L6, from identical weights and
// batches with dropout off, recorded by Tests/Fixtures/parity/make_finetune_steps.py.
// Tolerances: fp32 forward/backward on both sides, different summation orders; after six
// updates the losses agree to ~1e-5 and the updated weights to ~1e-6, so 1e-4 (loss, norm) and
// 2e-5 (weights, moved by ~1e-4 per step) are generous without hiding a wrong rule (a missing
// decay exclusion, a shifted schedule or a different clip changes them by far more).

import Foundation
import LinAlg
@testable import Model
import XCTest

final class FinetuneParityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Recipe: Decodable { let batch: Int; let epochs: Int; let lr: Float; let warmup_steps: Int; let weight_decay: Float; let max_grad_norm: Float }
        struct Head: Decodable { let weight: [Float]; let bias: [Float] }
        struct Batch: Decodable { let ids: [[Int32]]; let labels: [Int32] }
        struct Step: Decodable { let loss: Double; let grad_norm: Double; let lr: Double }
        let recipe: Recipe
        let head: Head
        let batches: [Batch]
        let steps: [Step]
        let final: [String: [Float]]
    }

    func testFirstStepsMatchTransformersFromIdenticalWeightsAndBatches() throws {
        let dir = try ModelAssets.miniLM()
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: URL(fileURLWithPath: FixturePaths.fixture("parity", "finetune_steps.json"))))
        let base = try ModelDirectory.load(dir)
        let model = BertEncoder(base: base, labels: ["negative", "positive"], problemType: .singleLabel, pooling: .cls, seed: 1)
        model.parameters.set("classifier.weight", from: try Tensor(shape: [2, model.config.hiddenSize], storage: fixture.head.weight))
        model.parameters.set("classifier.bias", from: try Tensor(shape: [2], storage: fixture.head.bias))

        var options = TrainingOptions()
        options.learningRate = fixture.recipe.lr
        options.weightDecay = fixture.recipe.weight_decay
        options.maxGradNorm = fixture.recipe.max_grad_norm
        options.dropout = false
        let total = fixture.batches.count * fixture.recipe.epochs
        options.warmupFraction = Double(fixture.recipe.warmup_steps) / Double(total)
        let steps = TrainingSteps(model: model, options: options, totalSteps: total)
        var taken: [TrainingSteps.Step] = []
        for _ in 0..<fixture.recipe.epochs {
            for b in fixture.batches { taken.append(try steps.step(try EncoderInput(sequences: b.ids), targets: .classes(b.labels))) }
        }
        XCTAssertEqual(taken.count, fixture.steps.count)
        for (i, (ours, theirs)) in zip(taken, fixture.steps).enumerated() {
            XCTAssertEqual(Double(ours.learningRate), theirs.lr, accuracy: 1e-7 * theirs.lr, "step \(i): learning rate (Float)")
            XCTAssertEqual(ours.loss, theirs.loss, accuracy: 1e-4, "step \(i): loss")
            XCTAssertEqual(ours.gradientNorm, theirs.grad_norm, accuracy: 1e-4 * max(1, theirs.grad_norm), "step \(i): gradient norm")
        }
        let worst = zip(taken, fixture.steps).map { abs($0.loss - $1.loss) }.max()!
        print("fine-tuning parity: \(taken.count) steps, largest loss difference vs transformers \(worst)")
        // The losses must move, or matching them would prove nothing about the updates.
        XCTAssertGreaterThan(abs(fixture.steps.last!.loss - fixture.steps.first!.loss), 0.01)
        for (torchName, expected) in fixture.final {
            let name = torchName.hasPrefix("bert.") ? String(torchName.dropFirst(5)) : torchName
            let got = try XCTUnwrap(model.parameters.tensor(name), name)
            for (j, e) in expected.enumerated() { XCTAssertEqual(got.storage[j], e, accuracy: 2e-5, "\(name)[\(j)] after \(total) steps") }
        }
    }
}
