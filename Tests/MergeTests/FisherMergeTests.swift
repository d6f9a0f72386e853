// Tests of Methods/FisherMerge.swift: identical Fishers reduce to the average, the floor
// fallback is applied and counted, the numpy fixture matches, missing Fishers are named.

import LinAlg
@testable import Merge
import XCTest

final class FisherMergeTests: XCTestCase {
    private func models(fishers: [Tensor<Float>], seed: UInt64) -> [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)] {
        var rng = SplitMix64(seed: seed)
        return fishers.enumerated().map { i, f in
            (name: "m\(i)", tensors: try! NamedTensors([("p", TestSupport.random(f.shape, &rng))]),
             statistics: NamedStatistics(tensors: try! NamedTensors([("p.fisher", f)])), weight: 1.0)
        }
    }

    func testIdenticalFishersGiveTheAverage() throws {
        var rng = SplitMix64(seed: 11)
        var f = TestSupport.random([4, 3], &rng)
        f.storage = f.storage.map { abs($0) + 0.1 }
        let ms = models(fishers: [f, f, f], seed: 12)
        let merged = try FisherMerge().merge(models: ms, parameters: [:]).tensors["p"]!
        for i in 0..<12 {
            let mean = ms.reduce(0.0) { $0 + Double($1.tensors["p"]!.storage[i]) } / 3
            XCTAssertEqual(Double(merged.storage[i]), mean, accuracy: 1e-6)
        }
    }

    func testEntriesBelowTheFloorFallBackToTheAverageAndAreCounted() throws {
        // Entries 0 and 3 have Σ F = 2e-7 < 1e-6 (floor); entry 1 has Σ F = 2e-6 (kept).
        let f0 = try Tensor<Float>(shape: [4], storage: [1e-7, 1e-6, 0.5, 1e-7])
        let f1 = try Tensor<Float>(shape: [4], storage: [1e-7, 1e-6, 0.25, 1e-7])
        let ms = models(fishers: [f0, f1], seed: 13)
        let result = try FisherMerge().merge(models: ms, parameters: [:])
        let merged = result.tensors["p"]!
        let (a, b) = (ms[0].tensors["p"]!.storage.map(Double.init), ms[1].tensors["p"]!.storage.map(Double.init))
        XCTAssertEqual(result.report.entry("p")?.fallbackCount, 2)
        XCTAssertEqual(Double(merged.storage[0]), (a[0] + b[0]) / 2, accuracy: 1e-6)
        XCTAssertEqual(Double(merged.storage[3]), (a[3] + b[3]) / 2, accuracy: 1e-6)
        XCTAssertEqual(Double(merged.storage[2]), (0.5 * a[2] + 0.25 * b[2]) / 0.75, accuracy: 1e-6)
        // A floor of 0 keeps every positive entry Fisher-weighted.
        XCTAssertEqual(try FisherMerge().merge(models: ms, parameters: ["fisher_floor": .number(0)]).report.entry("p")?.fallbackCount, 0)
    }

    func testL2NormalisationStopsAModelWithALargerFisherFromDominating() throws {
        // Model 1's Fisher is 1000× model 0's, entry for entry. Raw Fisher weights are then
        // 1 : 1000 everywhere (merged ≈ model 1); after per-model L2 normalisation both Fishers
        // are the same unit vector, so the merge is the plain average (closed form).
        var rng = SplitMix64(seed: 21)
        var f = TestSupport.random([5, 2], &rng)
        f.storage = f.storage.map { abs($0) + 0.05 }
        var big = f
        big.storage = f.storage.map { $0 * 1000 }
        let ms = models(fishers: [f, big], seed: 22)
        let (a, b) = (ms[0].tensors["p"]!.storage.map(Double.init), ms[1].tensors["p"]!.storage.map(Double.init))
        let raw = try FisherMerge().merge(models: ms, parameters: [:]).tensors["p"]!
        let normalised = try FisherMerge().merge(models: ms, parameters: ["fisher_normalize": .string("l2")]).tensors["p"]!
        for i in 0..<10 {
            XCTAssertEqual(Double(raw.storage[i]), (a[i] + 1000 * b[i]) / 1001, accuracy: 1e-5, "raw [\(i)]")
            XCTAssertEqual(Double(normalised.storage[i]), (a[i] + b[i]) / 2, accuracy: 1e-5, "l2 [\(i)]")
        }
        XCTAssertThrowsError(try FisherMerge().merge(models: ms, parameters: ["fisher_normalize": .string("l1")]))
    }

    func testMatchesNumpyFixture() throws { try TestSupport.checkFixture(method: "fisher") }

    func testMissingFisherInALaterModelIsANamedError() throws {
        var ms = models(fishers: [Tensor(shape: [2], repeating: 1), Tensor(shape: [2], repeating: 1)], seed: 14)
        ms[1].statistics = NamedStatistics()
        XCTAssertThrowsError(try FisherMerge().merge(models: ms, parameters: [:])) { error in
            XCTAssertEqual(error as? MergeError, .missingStatistic(model: "m1", key: "p.fisher"))
        }
    }

    func testRejectedModelLeavesTheSumsUnchanged() throws {
        try TestSupport.checkRejectedModelLeavesNoTrace(method: "fisher", parameters: [:]) { _, stats in
            stats.tensors.remove("classifier.bias.fisher")
        }
    }
}
