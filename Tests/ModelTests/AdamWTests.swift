// Tests for AdamW: three steps against a numpy reference of torch.optim.AdamW's documented
// algorithm (Tests/Fixtures/training/make_adamw_fixture.py → adamw.json).

import Foundation
import XCTest
@testable import Model

final class AdamWTests: XCTestCase {
    struct Fixture: Decodable {
        struct Config: Decodable { let beta1: Float; let beta2: Float; let epsilon: Float; let weightDecay: Float }
        struct Step: Decodable {
            let learningRate: Float
            let gradients: [String: [Float]]
            let parameters: [String: [Double]]
            let firstMoments: [String: [Double]]
            let secondMoments: [String: [Double]]
        }
        let config: Config
        let order: [String]
        let decay: [Bool]
        let initial: [String: [Float]]
        let steps: [Step]
    }

    func testThreeStepsMatchNumpyReference() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: FixturePaths.fixture("training", "adamw.json")))
        let fixture = try JSONDecoder().decode(Fixture.self, from: data)
        let c = fixture.config
        var parameters = fixture.order.map { fixture.initial[$0]! }
        let optimizer = AdamW(config: AdamWConfig(learningRate: 1, beta1: c.beta1, beta2: c.beta2,
                                                  epsilon: c.epsilon, weightDecay: c.weightDecay),
                              parameterSizes: parameters.map(\.count))
        for (t, step) in fixture.steps.enumerated() {
            let gradients = fixture.order.map { step.gradients[$0]! }
            // Buffers borrowed for the duration of the call, as the trainer will do.
            let pointers = parameters.indices.map { i in UnsafeMutableBufferPointer<Float>.allocate(capacity: parameters[i].count) }
            defer { pointers.forEach { $0.deallocate() } }
            for i in parameters.indices { _ = pointers[i].initialize(from: parameters[i]) }
            let gradientPointers = gradients.map { g -> UnsafeBufferPointer<Float> in
                let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: g.count)
                _ = p.initialize(from: g)
                return UnsafeBufferPointer(p)
            }
            defer { gradientPointers.forEach { $0.deallocate() } }
            optimizer.step(parameters: pointers, gradients: gradientPointers, learningRate: step.learningRate,
                           decayMask: fixture.decay)
            parameters = pointers.map { Array($0) }

            // Float32 arithmetic against a float64 reference: values are O(1) and each step
            // moves them by O(lr) ≤ 0.2, so 2e-6 absolute is a few Float ulps per step.
            for (i, name) in fixture.order.enumerated() {
                assertClose(parameters[i], step.parameters[name]!, tolerance: 2e-6, "θ \(name) after step \(t + 1)")
                assertClose(optimizer.firstMoment(i), step.firstMoments[name]!, tolerance: 1e-6, "m \(name) after step \(t + 1)")
                assertClose(optimizer.secondMoment(i), step.secondMoments[name]!, tolerance: 1e-7, "v \(name) after step \(t + 1)")
            }
        }
        XCTAssertEqual(optimizer.stepCount, 3)
    }

    func testZeroGradientMovesOnlyByDecay() {
        // With g = 0 throughout, m = v = 0, so θ ← θ·(1 − γλ) exactly when decayed, unchanged otherwise.
        let optimizer = AdamW(config: AdamWConfig(learningRate: 0.1, weightDecay: 0.5), parameterSizes: [1, 1])
        var decayed: [Float] = [2], kept: [Float] = [2]
        let zero: [Float] = [0]
        decayed.withUnsafeMutableBufferPointer { d in kept.withUnsafeMutableBufferPointer { k in
            zero.withUnsafeBufferPointer { g in
                optimizer.step(parameters: [d, k], gradients: [g, g], learningRate: 0.1, decayMask: [true, false])
            } } }
        XCTAssertEqual(decayed[0], 2 * (1 - 0.1 * 0.5), accuracy: 1e-7)
        XCTAssertEqual(kept[0], 2)
    }

    func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double, _ message: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
        for (a, e) in zip(actual, expected) where abs(Double(a) - e) > tolerance {
            XCTFail("\(message): \(actual) vs \(expected)", file: file, line: line)
            return
        }
    }
}
