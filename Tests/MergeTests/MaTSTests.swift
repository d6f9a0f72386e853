// Tests of Methods/MaTS.swift: the kfac objective against a dense numpy Kronecker solve, the
// regmean and fisher_diag objectives against their closed forms, CG's energy-norm descent,
// the per-tensor report and the missing-factor error.

import LinAlg
@testable import Merge
import XCTest

final class MaTSTests: XCTestCase {
    func testKfacMatchesDenseKroneckerSolveFromNumpy() throws {
        // Inputs are fp32; CG runs in fp64 to ‖r‖/‖b‖ ≤ 1e-12; output rounded to fp32: 1e-5 relative.
        try TestSupport.checkFixture(method: "mats", fixtureFile: "mats_fixture.json")
    }

    func testKfacReportRecordsConvergedCGWithSmallResidual() throws {
        let fixture = try TestSupport.loadFixture("mats_fixture.json")
        let result = try MaTS().merge(models: fixture.models, parameters: ["objective": .string("kfac"), "tolerance": .number(1e-10)])
        let entry = try XCTUnwrap(result.report.entry("bert.l.weight"))
        XCTAssertEqual(entry.rule, "mats_kfac")
        XCTAssertEqual(entry.converged, true)
        XCTAssertLessThanOrEqual(try XCTUnwrap(entry.finalResidual), 1e-6)
        XCTAssertGreaterThan(try XCTUnwrap(entry.initialResidual), 1e-3, "the average is not already the solution")
        XCTAssertGreaterThan(try XCTUnwrap(entry.iterations), 0)
        XCTAssertEqual(result.report.entry("bert.m.weight")?.rule, "average", "no K-FAC factor: keeps the init value")
        XCTAssertEqual(result.report.method, "mats")
    }

    func testRegmeanObjectiveConvergesToClosedFormRegMean() throws {
        let fixture = try TestSupport.loadFixture()
        let closed = try RegMean().merge(models: fixture.models, parameters: ["alpha": .number(0.9)]).tensors
        let mats = try MaTS().merge(models: fixture.models, parameters: ["objective": .string("regmean"), "init": .string("average"),
                                                                        "tolerance": .number(1e-12), "iterations": .number(500)])
        for name in closed.names where name.hasSuffix(".weight") && mats.report.entry(name)?.rule == "mats_regmean" {
            XCTAssertLessThanOrEqual(TestSupport.maxRelativeDifference(mats.tensors[name]!, closed[name]!), 1e-5, name)
        }
        XCTAssertEqual(mats.report.totals["mats_regmean"], 5)
    }

    func testFisherDiagObjectiveConvergesToFisherMerging() throws {
        let fixture = try TestSupport.loadFixture()
        let closed = try FisherMerge().merge(models: fixture.models, parameters: ["fisher_floor": .number(0)]).tensors
        let mats = try MaTS().merge(models: fixture.models, parameters: ["objective": .string("fisher_diag"), "tolerance": .number(1e-12)])
        for name in closed.names {
            XCTAssertEqual(mats.report.entry(name)?.rule, "mats_fisher_diag")
            XCTAssertLessThanOrEqual(TestSupport.maxRelativeDifference(mats.tensors[name]!, closed[name]!), 1e-5, name)
        }
    }

    /// Random K-FAC layer (out 12, in 16, K 3) with its factors, for the energy-norm test.
    private func kfacModels() -> [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)] {
        var rng = SplitMix64(seed: 31)
        func spd(_ d: Int, _ rows: Int) -> Tensor<Float> {
            let x: [[Double]] = (0..<rows).map { _ in (0..<d).map { _ in rng.nextNormal() } }
            return TestSupport.gram(x)
        }
        return (0..<3).map { i in
            let stats = try! NamedTensors([("l.gram", spd(16, 40)), ("l.kfac_out", spd(12, 30))])
            return ("m\(i)", try! NamedTensors([("l.weight", TestSupport.random([12, 16], &rng))]),
                    NamedStatistics(tensors: stats, metadata: ["l.gram.num_rows": "40", "l.kfac_out.num_rows": "30"]), 1.0)
        }
    }

    func testCGEnergyNormOfTheErrorDecreasesEveryIteration() throws {
        let models = kfacModels()
        let exact = try MaTS().merge(models: models, parameters: ["tolerance": .number(1e-14), "iterations": .number(2000),
                                                                 "preconditioner": .string("none")]).tensors["l.weight"]!
        // ‖E‖²_A = Σ_{o,j} E[o,j] · (Σᵢ Bᵢ E Aᵢ)[o,j], with plain Double loops.
        let factors: [([[Double]], [[Double]])] = models.map { m in
            let a = m.statistics.tensors["l.gram"]!, b = m.statistics.tensors["l.kfac_out"]!
            return ((0..<16).map { r in (0..<16).map { Double(a[r, $0]) / 40 } }, (0..<12).map { r in (0..<12).map { Double(b[r, $0]) / 30 } })
        }
        func energy(_ w: Tensor<Float>) -> Double {
            let e: [[Double]] = (0..<12).map { o in (0..<16).map { Double(w[o, $0]) - Double(exact[o, $0]) } }
            var total = 0.0
            for (a, b) in factors {
                for o in 0..<12 {
                    for j in 0..<16 {
                        var v = 0.0
                        for p in 0..<12 { for q in 0..<16 where e[p][q] != 0 { v += b[o][p] * e[p][q] * a[q][j] } }
                        total += e[o][j] * v
                    }
                }
            }
            return total
        }
        var previous = Double.infinity
        var checked = 0
        for k in 0..<10 {
            let w = try MaTS().merge(models: models, parameters: ["tolerance": .number(0), "iterations": .number(Double(k)),
                                                                  "preconditioner": .string("none")]).tensors["l.weight"]!
            let current = energy(w)
            if k == 0 { previous = current; continue }
            // Stop comparing once the error is near the fp32 rounding of the outputs.
            guard current > 1e-8 * previous else { break }
            XCTAssertLessThan(current, previous, "energy norm rose at iteration \(k)")
            previous = current
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 5)
    }

    /// ‖a − b‖_F / ‖b‖_F.
    private func relativeDistance(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Double {
        var (difference, norm) = (0.0, 0.0)
        for (x, y) in zip(a.storage, b.storage) {
            let d = Double(x) - Double(y)
            difference += d * d
            norm += Double(y) * Double(y)
        }
        return (difference / norm).squareRoot()
    }

    /// precision float32 runs plain CG on the whitened system Σ B̃ᵢ X̃ Ãᵢ = C̃ — in exact
    /// arithmetic the iterates of Kronecker-preconditioned CG on the original one, which
    /// precision float64 runs. Stopped early, far from the solution (1, 3 and 5 iterations;
    /// the average starts ≥ 10 % away from the 5-iteration merge), both must land on the same
    /// iterate: 1e-4 relative (fp32 GEMMs on factors whose whitened condition is ~10²), and
    /// report the same original-coordinate residuals to 1e-3 relative.
    func testWhitenedFloat32PathTakesTheFloat64PathsIterates() throws {
        let models = kfacModels()
        func run(_ precision: String, _ iterations: Int) throws -> MergeResult {
            try MaTS().merge(models: models, parameters: ["objective": .string("kfac"), "tolerance": .number(0),
                                                         "iterations": .number(Double(iterations)), "precision": .string(precision)])
        }
        let start = try run("float64", 0).tensors["l.weight"]!
        for iterations in [1, 3, 5] {
            let (single, double) = (try run("float32", iterations), try run("float64", iterations))
            let (w32, w64) = (single.tensors["l.weight"]!, double.tensors["l.weight"]!)
            XCTAssertLessThanOrEqual(relativeDistance(w32, w64), 1e-4, "\(iterations) iterations")
            if iterations == 5 { XCTAssertGreaterThan(relativeDistance(start, w64), 0.1, "the iterations must move the merge") }
            let (e32, e64) = (try XCTUnwrap(single.report.entry("l.weight")), try XCTUnwrap(double.report.entry("l.weight")))
            XCTAssertEqual(e32.iterations, iterations)
            XCTAssertEqual(try XCTUnwrap(e32.initialResidual), try XCTUnwrap(e64.initialResidual), accuracy: 1e-3 * e64.initialResidual!)
            XCTAssertEqual(try XCTUnwrap(e32.finalResidual), try XCTUnwrap(e64.finalResidual), accuracy: 1e-3 * e64.finalResidual!)
        }
    }

    /// The residual the float32 path reports is the original system's, ‖C − Σ Bᵢ W Aᵢ‖/‖C‖
    /// (not the whitened one CG iterates on): recomputed here with plain Double loops from the
    /// returned fp32 merge, to 1e-4 relative (the merge's fp32 rounding).
    func testFloat32PathReportsTheOriginalSystemsResidual() throws {
        let models = kfacModels()
        let result = try MaTS().merge(models: models, parameters: ["objective": .string("kfac"), "tolerance": .number(0),
                                                                  "iterations": .number(4)])
        let w = result.tensors["l.weight"]!
        let factors: [([[Double]], [[Double]], [[Double]])] = models.map { m in
            let a = m.statistics.tensors["l.gram"]!, b = m.statistics.tensors["l.kfac_out"]!, t = m.tensors["l.weight"]!
            return ((0..<16).map { r in (0..<16).map { Double(a[r, $0]) / 40 } }, (0..<12).map { r in (0..<12).map { Double(b[r, $0]) / 30 } },
                    (0..<12).map { r in (0..<16).map { Double(t[r, $0]) } })
        }
        func apply(_ x: [[Double]]) -> [[Double]] {
            var y = [[Double]](repeating: [Double](repeating: 0, count: 16), count: 12)
            for (a, b, _) in factors {
                for o in 0..<12 { for j in 0..<16 {
                    var v = 0.0
                    for p in 0..<12 { for q in 0..<16 { v += b[o][p] * x[p][q] * a[q][j] } }
                    y[o][j] += v
                } }
            }
            return y
        }
        // C = Σ Bᵢ Wᵢ Aᵢ
        var rhs = [[Double]](repeating: [Double](repeating: 0, count: 16), count: 12)
        for (a, b, theta) in factors {
            for o in 0..<12 { for j in 0..<16 {
                for p in 0..<12 { for q in 0..<16 { rhs[o][j] += b[o][p] * theta[p][q] * a[q][j] } }
            } }
        }
        let ax = apply((0..<12).map { r in (0..<16).map { Double(w[r, $0]) } })
        var (r2, b2) = (0.0, 0.0)
        for o in 0..<12 { for j in 0..<16 { r2 += (rhs[o][j] - ax[o][j]) * (rhs[o][j] - ax[o][j]); b2 += rhs[o][j] * rhs[o][j] } }
        let expected = (r2 / b2).squareRoot()
        let reported = try XCTUnwrap(result.report.entry("l.weight")?.finalResidual)
        XCTAssertGreaterThan(expected, 1e-4, "4 iterations leave a residual to compare")
        XCTAssertEqual(reported, expected, accuracy: 1e-4 * expected + 1e-7)
    }

    /// The Kronecker preconditioner changes CG's path, not its solution: on the fixture both it
    /// and Jacobi run to ‖r‖/‖b‖ ≤ 1e-10 and agree to 1e-5 relative (fp32 outputs), in fewer
    /// iterations. That 1e-5 is the documented tolerance between the two where both converge.
    func testKroneckerPreconditionerReachesJacobisSolutionInFewerIterations() throws {
        let fixture = try TestSupport.loadFixture("mats_fixture.json")
        func run(_ preconditioner: String) throws -> MergeResult {
            try MaTS().merge(models: fixture.models, parameters: ["objective": .string("kfac"), "tolerance": .number(1e-10),
                                                                 "iterations": .number(1000), "preconditioner": .string(preconditioner)])
        }
        let jacobi = try run("jacobi"), kronecker = try run("kronecker")
        let (j, k) = (try XCTUnwrap(jacobi.report.entry("bert.l.weight")), try XCTUnwrap(kronecker.report.entry("bert.l.weight")))
        XCTAssertEqual(j.converged, true)
        XCTAssertEqual(k.converged, true)
        XCTAssertLessThan(try XCTUnwrap(k.iterations), try XCTUnwrap(j.iterations))
        XCTAssertLessThanOrEqual(TestSupport.maxRelativeDifference(kronecker.tensors["bert.l.weight"]!, jacobi.tensors["bert.l.weight"]!), 1e-5)
        XCTAssertEqual(try run("auto").tensors["bert.l.weight"], kronecker.tensors["bert.l.weight"], "auto is kronecker for kfac")
    }

    /// Models sharing their factors up to scale (Aᵢ = A, Bᵢ = cᵢB): Σ cᵢ B W A = Σ cᵢ B Wᵢ A gives
    /// the closed form W = Σ cᵢWᵢ / Σ cᵢ, and B ⊗ A is the operator itself (up to the
    /// preconditioner's 1e-3 damping floor), so CG needs a handful of steps where Jacobi needs many.
    func testKroneckerPreconditionerIsExactForSharedFactors() throws {
        var rng = SplitMix64(seed: 17)
        func spd(_ d: Int, _ rows: Int) -> Tensor<Float> {
            TestSupport.gram((0..<rows).map { _ in (0..<d).map { _ in rng.nextNormal() } })
        }
        let a = spd(16, 40), b = spd(12, 30)
        let scales: [Float] = [1, 4, 0.25]
        let models = scales.enumerated().map { i, c in
            let stats = try! NamedTensors([("l.gram", a), ("l.kfac_out", try! Tensor(shape: b.shape, storage: b.storage.map { $0 * c }))])
            return ("m\(i)", try! NamedTensors([("l.weight", TestSupport.random([12, 16], &rng))]),
                    NamedStatistics(tensors: stats, metadata: ["l.gram.num_rows": "40", "l.kfac_out.num_rows": "30"]), 1.0)
        }
        let result = try MaTS().merge(models: models, parameters: ["objective": .string("kfac"), "tolerance": .number(1e-12)])
        let jacobi = try MaTS().merge(models: models, parameters: ["objective": .string("kfac"), "tolerance": .number(1e-12),
                                                                  "iterations": .number(1000), "preconditioner": .string("jacobi")])
        var expected = Tensor<Float>(shape: [12, 16])
        for (m, c) in zip(models, scales) {
            for i in 0..<expected.count { expected.storage[i] += m.1["l.weight"]!.storage[i] * c / scales.reduce(0, +) }
        }
        XCTAssertLessThanOrEqual(TestSupport.maxRelativeDifference(result.tensors["l.weight"]!, expected), 1e-5)
        let iterations = try XCTUnwrap(result.report.entry("l.weight")?.iterations)
        XCTAssertLessThanOrEqual(iterations, 8)
        XCTAssertLessThan(2 * iterations, try XCTUnwrap(jacobi.report.entry("l.weight")?.iterations))
    }

    func testKfacWithoutAnyKfacFactorIsANamedError() throws {
        let fixture = try TestSupport.loadFixture()
        XCTAssertThrowsError(try MaTS().merge(models: fixture.models, parameters: ["objective": .string("kfac")])) {
            guard case .missingStatistic(model: "a", let key)? = $0 as? MergeError, key.contains("kfac_out") else { return XCTFail("\($0)") }
        }
    }

    func testKfacRefusesTheModelBeyondMaxModelsBeforeReadingIt() throws {
        let models = kfacModels()
        let bounded = try MaTS().makeAccumulator(parameters: ["objective": .string("kfac"), "max_models": .number(2)])
        for m in models.prefix(2) { try bounded.add(model: m.tensors, statistics: m.statistics, weight: 1, name: m.name) }
        XCTAssertThrowsError(try bounded.add(model: models[2].tensors, statistics: models[2].statistics, weight: 1, name: models[2].name)) {
            guard case .tooManyModels(method: "mats", model: "m2", limit: 2, _)? = $0 as? MergeError else { return XCTFail("\($0)") }
            XCTAssertTrue("\($0)".contains("max_models 2"), "\($0)")
        }
        // The refused model left no trace: the result is the merge of the first two.
        let two = try MaTS().merge(models: Array(models.prefix(2)), parameters: ["objective": .string("kfac")])
        XCTAssertEqual(try bounded.finish().tensors["l.weight"]!.storage, two.tensors["l.weight"]!.storage)
        // The default bound is 16 for kfac; objectives that fold into sums have none.
        XCTAssertEqual(MaTS().maxModels(try MaTS().validate(parameters: [:])), MaTS.defaultMaxModels)
        XCTAssertNil(MaTS().maxModels(try MaTS().validate(parameters: ["objective": .string("regmean")])))
        let many = try MaTS().makeAccumulator(parameters: ["objective": .string("regmean"), "max_models": .number(1)])
        for m in models { try many.add(model: m.tensors, statistics: m.statistics, weight: 1, name: m.name) }
    }

    func testRequiredStatisticsFollowObjectiveAndInit() throws {
        let p = try MaTS().validate(parameters: ["objective": .string("kfac"), "init": .string("fisher")])
        XCTAssertEqual(MaTS().requiredStatistics(p), [.gram, .kfacOut, .fisher])
    }

    func testRejectedModelLeavesTheSumsUnchanged() throws {
        try TestSupport.checkRejectedModelLeavesNoTrace(method: "mats", parameters: ["objective": .string("kfac"), "init": .string("regmean")]) { _, stats in
            stats.metadata["bert.l.kfac_out.num_rows"] = "zero"
        }
    }
}
