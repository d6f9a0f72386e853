// Tests of Methods/RegMean.swift against closed forms: joint least squares on stacked data,
// the simple and per-feature averages it reduces to, the numpy fixture, streaming, order,
// parallel solving, rank-deficient Grams and missing statistics.

import LinAlg
@testable import Merge
import XCTest

final class RegMeanTests: XCTestCase {
    /// K linear models y = W_k x on their own inputs X_k; name "lin.weight" (out×in), Gram "lin.gram".
    private func linearModels(k: Int, out: Int, inDim: Int, rows: [Int], seed: UInt64, deadFeature: Int? = nil)
        -> (models: [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)], inputs: [[[Double]]]) {
        var rng = SplitMix64(seed: seed)
        var models: [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)] = []
        var inputs: [[[Double]]] = []
        for i in 0..<k {
            let w = TestSupport.random([out, inDim], &rng)
            // Per-feature scales make the Grams differ between models (otherwise RegMean = average).
            let scales = (0..<inDim).map { _ in 0.5 + 1.5 * Double.random(in: 0..<1, using: &rng) }
            let x: [[Double]] = (0..<rows[i]).map { _ in
                (0..<inDim).map { j in j == deadFeature ? 0 : Double(Float(rng.nextNormal() * scales[j])) }
            }
            inputs.append(x)
            let tensors = try! NamedTensors([("lin.weight", w), ("lin.bias", TestSupport.random([out], &rng))])
            let stats = NamedStatistics(tensors: try! NamedTensors([("lin.gram", TestSupport.gram(x))]),
                                        metadata: ["lin.gram.num_rows": "\(rows[i])"])
            models.append(("m\(i)", tensors, stats, 1))
        }
        return (models, inputs)
    }

    func testAlphaOneEqualsLeastSquaresOnStackedData() throws {
        let (out, d) = (3, 4)
        let (models, inputs) = linearModels(k: 3, out: out, inDim: d, rows: [9, 6, 12], seed: 1)
        // Independent truth: QR least squares of [X₁; X₂; X₃] B ≈ [X₁W₁ᵀ; X₂W₂ᵀ; X₃W₃ᵀ], W = Bᵀ.
        var stackedX: [[Double]] = [], stackedY: [[Double]] = []
        for (m, x) in zip(models, inputs) {
            let w = m.tensors["lin.weight"]!
            for row in x {
                stackedX.append(row)
                stackedY.append((0..<out).map { o in (0..<d).reduce(0) { $0 + row[$1] * Double(w[o, $1]) } })
            }
        }
        let b = TestSupport.leastSquares(stackedX, stackedY)
        // gram_normalize: sum, so every row counts once, exactly as in the stacked problem.
        let result = try RegMean().merge(models: models, parameters: ["alpha": .number(1), "gram_normalize": .string("sum")])
        let merged = result.tensors["lin.weight"]!
        // Tolerance 1e-5: fp32 Grams and weights, well-conditioned inputs (condition < 100).
        for o in 0..<out { for j in 0..<d { XCTAssertEqual(Double(merged[o, j]), b[j][o], accuracy: 1e-5 * max(1, abs(b[j][o]))) } }
        XCTAssertEqual(result.report.entry("lin.weight")?.rule, "regmean")
        XCTAssertEqual(result.report.entry("lin.weight")?.solvePath, "cholesky")
        XCTAssertEqual(result.report.entry("lin.bias")?.rule, "average")
    }

    func testIdenticalGramsGiveSimpleAverage() throws {
        var (models, _) = linearModels(k: 3, out: 3, inDim: 5, rows: [10, 10, 10], seed: 2)
        for i in 1..<3 { models[i].statistics = models[0].statistics }
        let result = try RegMean().merge(models: models, parameters: ["alpha": .number(0.7)])
        var mean = Tensor<Float>(shape: [3, 5])
        for m in models { for i in 0..<15 { mean.storage[i] += m.tensors["lin.weight"]!.storage[i] / 3 } }
        XCTAssertLessThanOrEqual(TestSupport.maxRelativeDifference(result.tensors["lin.weight"]!, mean), 1e-5)
    }

    func testAlphaZeroIsPerInputFeatureReweightedAverage() throws {
        let (models, _) = linearModels(k: 3, out: 2, inDim: 4, rows: [5, 8, 13], seed: 3)
        let result = try RegMean().merge(models: models, parameters: ["alpha": .number(0)])
        let merged = result.tensors["lin.weight"]!
        // Closed form: W[:, j] = Σ_k (G_k,jj / n_k) W_k[:, j] / Σ_k (G_k,jj / n_k).
        for o in 0..<2 {
            for j in 0..<4 {
                var num = 0.0, den = 0.0
                for m in models {
                    let g = Double(m.statistics.tensors["lin.gram"]![j, j]) / Double(m.statistics.metadata["lin.gram.num_rows"]!)!
                    num += g * Double(m.tensors["lin.weight"]![o, j]); den += g
                }
                XCTAssertEqual(Double(merged[o, j]), num / den, accuracy: 1e-5)
            }
        }
    }

    func testMatchesNumpyFixture() throws { try TestSupport.checkFixture(method: "regmean") }

    func testSharedGramViaSameAsIsUsedForBothLinears() throws {
        let fixture = try TestSupport.loadFixture()
        let result = try RegMean().merge(models: fixture.models, parameters: [:])
        XCTAssertEqual(result.report.entry("bert.encoder.layer.0.attention.self.key.weight")?.rule, "regmean")
        XCTAssertEqual(result.report.totals["regmean"], 5)
    }

    func testStreamingEqualsAllInMemorySums() throws {
        // Streaming: each model exists only inside its loop iteration.
        let accumulator = try RegMean().makeAccumulator(parameters: ["alpha": .number(0.8)])
        for i in 0..<4 {
            let m = linearModels(k: 4, out: 3, inDim: 6, rows: [7, 9, 11, 13], seed: 4).models[i]
            try accumulator.add(model: m.tensors, statistics: m.statistics, weight: 1, name: m.name)
        }
        let streamed = try accumulator.finish().tensors["lin.weight"]!
        // All in memory: every G̃ₖ and Wₖ held at once, summed afterwards, solved by Cholesky.
        let models = linearModels(k: 4, out: 3, inDim: 6, rows: [7, 9, 11, 13], seed: 4).models
        let gTildes: [Tensor<Double>] = models.map { m in
            var g = m.statistics.tensors["lin.gram"]!.converted(to: Double.self)
            let n = Double(m.statistics.metadata["lin.gram.num_rows"]!)!
            for i in 0..<6 { for j in 0..<6 { g[i, j] *= (i == j ? 1 : 0.8) / n } }
            return g
        }
        var sumG = Tensor<Double>(shape: [6, 6]), sumRHS = Tensor<Double>(shape: [6, 3])
        for (g, m) in zip(gTildes, models) {
            try axpy(1, g, &sumG)
            try axpy(1, try matmul(g, m.tensors["lin.weight"]!.converted(to: Double.self), transposeB: true), &sumRHS)
        }
        let wT = try CholeskyFactor(sumG).solve(sumRHS)
        for o in 0..<3 { for j in 0..<6 { XCTAssertEqual(Double(streamed[o, j]), wT[j, o], accuracy: 1e-5 * max(1, abs(wT[j, o]))) } }
    }

    func testModelOrderPermutationChangesNothingBeyondRounding() throws {
        let fixture = try TestSupport.loadFixture()
        for (method, parameters) in [("regmean", [String: MergeValue]()), ("fisher", [:]), ("average", [:]),
                                     ("task_arithmetic", ["lambda": .number(0.5)]), ("ties", ["density": .number(0.5)])] {
            let m = try MethodRegistry.method(named: method)
            let forward = try m.merge(models: fixture.models, parameters: parameters, base: fixture.base).tensors
            let backward = try m.merge(models: fixture.models.reversed(), parameters: parameters, base: fixture.base).tensors
            for name in forward.names {
                XCTAssertLessThanOrEqual(TestSupport.maxRelativeDifference(forward[name]!, backward[name]!), 1e-6, "\(method): \(name)")
            }
        }
    }

    func testParallelSolveEqualsSerialSolve() throws {
        let fixture = try TestSupport.loadFixture()
        let parallel = try RegMean(parallel: true).merge(models: fixture.models, parameters: [:]).tensors
        let serial = try RegMean(parallel: false).merge(models: fixture.models, parameters: [:]).tensors
        for name in parallel.names { XCTAssertEqual(parallel[name], serial[name], name) }
    }

    func testDeadInputFeatureStillMergesAndReportsSolvePath() throws {
        let (out, d, dead) = (3, 5, 2)
        let (models, inputs) = linearModels(k: 2, out: out, inDim: d, rows: [12, 15], seed: 5, deadFeature: dead)
        let result = try RegMean().merge(models: models, parameters: ["alpha": .number(1), "gram_normalize": .string("sum")])
        let entry = try XCTUnwrap(result.report.entry("lin.weight"))
        XCTAssertNotEqual(entry.solvePath, "cholesky", "a singular Σ G must not be reported as a plain Cholesky solve")
        XCTAssertTrue(["jitter", "pinv"].contains(entry.solvePath ?? ""), "path \(entry.solvePath ?? "nil")")
        let merged = result.tensors["lin.weight"]!
        XCTAssertTrue(merged.isFinite)
        // The live features still get the least-squares solution of the problem without the dead one.
        let live = (0..<d).filter { $0 != dead }
        var xs: [[Double]] = [], ys: [[Double]] = []
        for (m, x) in zip(models, inputs) {
            let w = m.tensors["lin.weight"]!
            for row in x {
                xs.append(live.map { row[$0] })
                ys.append((0..<out).map { o in (0..<d).reduce(0) { $0 + row[$1] * Double(w[o, $1]) } })
            }
        }
        let b = TestSupport.leastSquares(xs, ys)
        for o in 0..<out {
            for (jj, j) in live.enumerated() { XCTAssertEqual(Double(merged[o, j]), b[jj][o], accuracy: 1e-4 * max(1, abs(b[jj][o]))) }
            XCTAssertEqual(Double(merged[o, dead]), 0, accuracy: 1e-3, "the dead feature's column carries no information")
        }
    }

    func testMissingGramInALaterModelIsANamedError() throws {
        var (models, _) = linearModels(k: 2, out: 2, inDim: 3, rows: [4, 4], seed: 6)
        models[1].statistics = NamedStatistics()
        XCTAssertThrowsError(try RegMean().merge(models: models, parameters: [:])) { error in
            XCTAssertEqual(error as? MergeError, .missingStatistic(model: "m1", key: "lin.gram"))
            XCTAssertTrue("\(error)".contains("m1") && "\(error)".contains("lin.gram"))
        }
    }

    func testGramOfWrongSizeNamesBothShapes() throws {
        var (models, _) = linearModels(k: 2, out: 2, inDim: 3, rows: [4, 4], seed: 7)
        models[1].statistics.tensors.set("lin.gram", Tensor<Float>.identity(4))
        XCTAssertThrowsError(try RegMean().merge(models: models, parameters: [:])) { error in
            XCTAssertEqual(error as? MergeError, .shapeMismatch(model: "m1", tensor: "lin.gram (Gram of lin.weight)", expected: [3, 3], actual: [4, 4]))
        }
    }

    func testNoGramAnywhereIsAnError() throws {
        var (models, _) = linearModels(k: 2, out: 2, inDim: 3, rows: [4, 4], seed: 8)
        for i in 0..<2 { models[i].statistics = NamedStatistics() }
        XCTAssertThrowsError(try RegMean().merge(models: models, parameters: [:])) { error in
            guard case .missingStatistic(model: "m0", _)? = error as? MergeError else { return XCTFail("\(error)") }
        }
    }

    func testRejectedModelLeavesTheSumsUnchanged() throws {
        // The last linear's Gram is missing: nothing of this model may reach any sum.
        try TestSupport.checkRejectedModelLeavesNoTrace(method: "regmean", parameters: [:]) { _, stats in
            stats.tensors.remove("bert.encoder.layer.1.output.dense.gram")
        }
        try TestSupport.checkRejectedModelLeavesNoTrace(method: "regmean", parameters: ["heads": .string("per_label")]) { _, stats in
            var g = stats.tensors["bert.encoder.layer.1.output.dense.gram"]!
            g.storage[0] = .nan
            stats.tensors.set("bert.encoder.layer.1.output.dense.gram", g)
        }
    }
}
