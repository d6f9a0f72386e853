// Noisy Grams meet the merge: RegMean produces finite weights from DP-noised Grams, projected
// (Cholesky path) or not (indefinite sums end in the eigen pseudo-inverse), and the agent's
// projected Grams pass the aggregator's PSD plausibility check that the raw noisy ones fail.

import LinAlg
@testable import Merge
@testable import Model
import XCTest

final class PrivateGramMergeTests: XCTestCase {
    /// K linear models with Grams of a few rows each, noised at a σ far above their scale.
    private func models(project: Bool, seed: UInt64) throws -> [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)] {
        var rng = SplitMix64(seed: seed)
        let (out, d) = (3, 10)
        return try (0..<3).map { k in
            let w = Tensor<Float>(randomNormal: [out, d], std: 0.5, using: &rng)
            var g = Tensor<Float>(shape: [d, d])
            for _ in 0..<4 {                                   // rank 4 < d: singular even before noise
                let x = (0..<d).map { _ in Float(rng.nextNormal()) }
                for i in 0..<d { for j in 0..<d { g.storage[i * d + j] += x[i] * x[j] } }
            }
            var noisy = GramNoise.addSymmetricNoise(g, std: 20, using: &rng)
            if project { noisy = try PositiveSemidefinite.nearest(noisy).matrix }
            let stats = NamedStatistics(tensors: try NamedTensors([("lin.gram", noisy.converted(to: Float.self))]),
                                        metadata: ["lin.gram.num_rows": "4"])
            return ("m\(k)", try NamedTensors([("lin.weight", w), ("lin.bias", Tensor<Float>(shape: [out]))]), stats, 1)
        }
    }

    func testRegMeanOnNoisyGramsGivesFiniteWeights() throws {
        for project in [true, false] {
            for alpha in [0.5, 0.9, 1.0] {
                let result = try RegMean().merge(models: try models(project: project, seed: 7), parameters: ["alpha": .number(alpha)])
                let w = try XCTUnwrap(result.tensors["lin.weight"])
                XCTAssertTrue(w.isFinite, "project \(project), alpha \(alpha)")
                XCTAssertGreaterThan(w.storage.map { abs($0) }.max()!, 0)
            }
        }
        // Projected Grams at α = 0.9 are positive definite after the diagonal blend: plain Cholesky.
        let projected = try RegMean().merge(models: try models(project: true, seed: 7), parameters: ["alpha": .number(0.9)])
        XCTAssertEqual(projected.report.entry("lin.weight")?.solvePath, "cholesky")
    }

    func testProjectedNoisyGramsPassThePSDCheckRawOnesFail() throws {
        let limits = PlausibilityLimits.standard
        for m in try models(project: true, seed: 8) {
            XCTAssertNil(Plausibility.symmetricPSD(m.statistics.tensors["lin.gram"]!, name: "lin.gram", limits: limits))
        }
        let raw = try models(project: false, seed: 8)
        XCTAssertTrue(raw.contains { Plausibility.symmetricPSD($0.statistics.tensors["lin.gram"]!, name: "lin.gram", limits: limits)?.kind == .notPositiveSemidefinite })
    }
}
