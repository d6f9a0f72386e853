// FleetPerturbation: each agent's copy of one contribution still passes the aggregator's own
// plausibility checks (Merge.Plausibility), factors keep the exact form that makes them PSD,
// the noise is bounded and seeded, and files round-trip tensor by tensor.

import Experiment
import Foundation
import LinAlg
import Merge
import SafeTensors
import XCTest

final class FleetPerturbationTests: XCTestCase {
    /// A tiny fine-tuned linear with a rank-deficient Gram (3 rows, 6 inputs: singular PSD,
    /// the hardest case for a PSD check), a K-FAC output factor and a Fisher with zeros.
    private func contribution() throws -> (base: NamedTensors, model: NamedTensors, statistics: NamedStatistics) {
        var rng = SplitMix64(seed: 5)
        func normal(_ shape: [Int], _ scale: Double) -> Tensor<Float> {
            try! Tensor(shape: shape, storage: (0..<shape.reduce(1, *)).map { _ in Float(rng.nextNormal() * scale) })
        }
        func gram(_ rows: Int, _ d: Int) -> Tensor<Float> {
            let x = normal([rows, d], 1)
            var g = Tensor<Float>(shape: [d, d])
            try! gemm(x, x, transposeA: true, into: &g)
            return g
        }
        let base = try NamedTensors([("l.weight", normal([4, 6], 1)), ("l.bias", normal([4], 1))])
        var model = NamedTensors()
        for name in base.names {
            var t = base[name]!
            let delta = normal(t.shape, 0.01)
            for i in 0..<t.count { t.storage[i] += delta.storage[i] }
            model.set(name, t)
        }
        var fisher = normal([4, 6], 1)
        fisher.storage = fisher.storage.enumerated().map { i, x in i % 5 == 0 ? 0 : abs(x) }
        let statistics = NamedStatistics(tensors: try NamedTensors([("l.gram", gram(3, 6)), ("l.kfac_out", gram(2, 4)), ("l.weight.fisher", fisher)]),
                                         metadata: ["l.gram.num_rows": "3", "l.kfac_out.num_rows": "2"])
        return (base, model, statistics)
    }

    private func perturbed(_ c: (base: NamedTensors, model: NamedTensors, statistics: NamedStatistics), seed: UInt64, scale: Double)
        -> (NamedTensors, NamedStatistics) {
        let p = FleetPerturbation(seed: seed, scale: scale)
        var model = NamedTensors(), stats = NamedTensors()
        for n in c.model.names { model.set(n, p.apply(.weight, to: c.model[n]!, name: n)) }
        for n in c.statistics.tensors.names { stats.set(n, p.apply(FleetPerturbation.statisticsRule(n), to: c.statistics.tensors[n]!, name: n)) }
        return (model, NamedStatistics(tensors: stats, metadata: c.statistics.metadata))
    }

    func testEveryAgentsCopyPassesTheAggregatorsPlausibilityChecks() throws {
        let c = try contribution()
        XCTAssertEqual(Plausibility.check(model: c.model, statistics: c.statistics, base: c.base).violations, [], "the original is plausible")
        for scale in [1e-3, 0.3] {
            for seed in UInt64(1)...8 {
                let (model, statistics) = perturbed(c, seed: seed, scale: scale)
                XCTAssertEqual(Plausibility.check(model: model, statistics: statistics, base: c.base).violations, [], "seed \(seed), scale \(scale)")
                XCTAssertNotEqual(model["l.weight"], c.model["l.weight"])
                XCTAssertNotEqual(statistics.tensors["l.gram"], c.statistics.tensors["l.gram"])
            }
        }
    }

    func testFactorsArePositiveMultiplesPlusANonNegativeDiagonal() throws {
        let g = try contribution().statistics.tensors["l.gram"]!
        let scale = 0.1
        let out = FleetPerturbation(seed: 3, scale: scale).apply(.factor, to: g, name: "l.gram")
        let n = g.rows
        let c = Double(out[0, 1]) / Double(g[0, 1])
        XCTAssertGreaterThanOrEqual(c, 1 - scale)
        XCTAssertLessThanOrEqual(c, 1 + scale)
        var meanDiagonal = 0.0
        for j in 0..<n { meanDiagonal += Double(g[j, j]) / Double(n) }
        for i in 0..<n {
            for j in 0..<n where i != j {
                XCTAssertEqual(Double(out[i, j]), c * Double(g[i, j]), accuracy: 1e-5 * abs(Double(g[i, j])) + 1e-6, "(\(i), \(j)) off the diagonal: c · G")
                XCTAssertEqual(out[i, j], out[j, i], "symmetric")
            }
            let added = Double(out[i, i]) - c * Double(g[i, i])
            XCTAssertGreaterThanOrEqual(added, -1e-5 * Double(g[i, i]))
            XCTAssertLessThanOrEqual(added, scale * meanDiagonal * (1 + 1e-5))
        }
    }

    func testWeightAndFisherNoiseIsBoundedSeededAndOrderFree() throws {
        let c = try contribution()
        let w = c.model["l.weight"]!, f = c.statistics.tensors["l.weight.fisher"]!
        let scale = 0.01
        let p = FleetPerturbation(seed: 11, scale: scale)
        let rms = (w.storage.reduce(0) { $0 + Double($1) * Double($1) } / Double(w.count)).squareRoot()
        let pw = p.apply(.weight, to: w, name: "l.weight")
        for i in 0..<w.count { XCTAssertLessThanOrEqual(abs(Double(pw.storage[i]) - Double(w.storage[i])), scale * rms * (1 + 1e-5)) }
        let pf = p.apply(.fisher, to: f, name: "l.weight.fisher")
        for i in 0..<f.count {
            XCTAssertGreaterThanOrEqual(pf.storage[i], 0)
            XCTAssertLessThanOrEqual(abs(Double(pf.storage[i]) - Double(f.storage[i])), scale * Double(f.storage[i]) * (1 + 1e-5) + 1e-12)
        }
        XCTAssertEqual(p.apply(.weight, to: w, name: "l.weight"), pw, "same seed and name, same bytes")
        XCTAssertNotEqual(FleetPerturbation(seed: 12, scale: scale).apply(.weight, to: w, name: "l.weight"), pw, "another seed, other noise")
        XCTAssertNotEqual(p.apply(.weight, to: w, name: "m.weight"), pw, "another tensor name, other noise")
        XCTAssertEqual(p.apply(.unchanged, to: w, name: "l.weight"), w)
    }

    func testStatisticsRulesFollowTheStatisticKeys() {
        XCTAssertEqual(FleetPerturbation.statisticsRule("bert.encoder.layer.0.attention.self.query.gram"), .factor)
        XCTAssertEqual(FleetPerturbation.statisticsRule("bert.encoder.layer.0.output.dense.kfac_out"), .factor)
        XCTAssertEqual(FleetPerturbation.statisticsRule("bert.pooler.dense.weight.fisher"), .fisher)
        XCTAssertEqual(FleetPerturbation.statisticsRule("train.label_counts"), .unchanged)
    }

    func testFilesArePerturbedTensorByTensorWithTheirMetadata() throws {
        let c = try contribution()
        let dir = NSTemporaryDirectory() + "fleet-perturbation-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = c.statistics.tensors.names
        try SafeTensorsWriter.write(tensors: names.map { ($0, c.statistics.tensors[$0]!) }, metadata: c.statistics.metadata, to: dir + "/stats.safetensors")
        let p = FleetPerturbation(seed: 4, scale: 0.05)
        try p.write(dir + "/stats.safetensors", to: dir + "/out.safetensors", rule: FleetPerturbation.statisticsRule)
        let out = try SafeTensorsFile(path: dir + "/out.safetensors")
        XCTAssertEqual(out.metadata, c.statistics.metadata)
        XCTAssertEqual(out.names.sorted(), names.sorted())
        for n in names {
            XCTAssertEqual(try out.floatTensor(n), p.apply(FleetPerturbation.statisticsRule(n), to: c.statistics.tensors[n]!, name: n), n)
        }
    }
}
