// Plausibility: each check against a case whose answer is known in closed form — distances
// of a known perturbation, a Gram built from chosen eigenvalues and a rotation, and the
// tensors a model must and must not carry relative to its base.

import LinAlg
import XCTest
@testable import Merge

final class PlausibilityTests: XCTestCase {
    /// A 4-tensor "base model": one linear (weight 3×4, bias 3), an embedding, a LayerNorm.
    private func base() throws -> NamedTensors {
        try NamedTensors([
            ("encoder.dense.weight", Tensor(shape: [3, 4], storage: (0..<12).map { Float($0 % 5) - 2 })),
            ("encoder.dense.bias", Tensor(shape: [3], storage: [0.5, -1, 2])),
            ("embeddings.word.weight", Tensor(shape: [5, 4], storage: (0..<20).map { Float($0) / 10 })),
            ("embeddings.norm.weight", Tensor(shape: [4], storage: [1, 1, 1, 1])),
        ])
    }

    /// The base as a fine-tuned classifier would carry it ("bert." prefix) plus a head.
    private func fineTuned(_ base: NamedTensors) throws -> NamedTensors {
        var model = NamedTensors()
        for name in base.names { model.set("bert." + name, base[name]!) }
        model.set("classifier.weight", try Tensor(shape: [2, 4], storage: [0.1, -0.2, 0.3, 0.0, 0.05, 0.1, -0.1, 0.2]))
        model.set("classifier.bias", try Tensor(shape: [2], storage: [0, 0.01]))
        return model
    }

    func testUnchangedModelWithAHeadIsPlausible() throws {
        let b = try base()
        let result = Plausibility.check(model: try fineTuned(b), statistics: nil, base: b)
        XCTAssertEqual(result.violations, [])
        XCTAssertEqual(result.modelDistance, 0)
    }

    func testDistanceIsTheRelativeNormOfTheChangeAndItsLimitHolds() throws {
        let b = try base()
        var model = try fineTuned(b)
        // δ = (3, 4) on two entries of the bias: ‖δ‖ = 5, ‖b‖ = √(0.25 + 1 + 4) = √5.25.
        model.set("bert.encoder.dense.bias", try Tensor(shape: [3], storage: [0.5 + 3, -1 + 4, 2]))
        let tensorDistance = 5 / 5.25.squareRoot()
        var limits = PlausibilityLimits(maxTensorDistance: tensorDistance * 1.001, maxModelDistance: 10)
        let passing = Plausibility.check(model: model, statistics: nil, base: b, limits: limits)
        XCTAssertEqual(passing.violations, [])
        XCTAssertEqual(passing.largestTensorDistance, tensorDistance, accuracy: 1e-12)
        // Whole model: ‖δ‖ / ‖θ₀‖ with ‖θ₀‖² the sum of every base entry squared.
        let baseSquared = b.names.reduce(0.0) { sum, name in sum + b[name]!.storage.reduce(0.0) { $0 + Double($1) * Double($1) } }
        XCTAssertEqual(passing.modelDistance, 5 / baseSquared.squareRoot(), accuracy: 1e-12)

        limits.maxTensorDistance = tensorDistance * 0.999
        let failing = Plausibility.check(model: model, statistics: nil, base: b, limits: limits)
        XCTAssertEqual(failing.violations.map(\.kind), [.distance])
        XCTAssertEqual(failing.violations.first?.tensor, "bert.encoder.dense.bias")
    }

    func testScaledWeightsFailTheDistanceCheck() throws {
        let b = try base()
        var model = try fineTuned(b)
        for name in model.names where !name.hasPrefix("classifier") {
            var t = model[name]!
            t.storage = t.storage.map { $0 * 1e30 }
            model.set(name, t)
        }
        let kinds = Set(Plausibility.check(model: model, statistics: nil, base: b).violations.map(\.kind))
        XCTAssertEqual(kinds, [.distance])
    }

    func testZeroBaseTensorUsesTheFloor() throws {
        // A zero base bias (as a freshly initialised one): the scale is floor·√n, not 0.
        let b = try NamedTensors([("dense.bias", Tensor(shape: [4], repeating: 0))])
        let model = try NamedTensors([("dense.bias", Tensor(shape: [4], storage: [0.05, 0.05, 0.05, 0.05]))])
        let result = Plausibility.check(model: model, statistics: nil, base: b, limits: PlausibilityLimits(distanceFloor: 0.05))
        XCTAssertEqual(result.largestTensorDistance, 1, accuracy: 1e-6)   // ‖δ‖ = 0.1 = 0.05·√4
        XCTAssertEqual(result.violations, [])
    }

    func testExtraMissingReshapedAndNonFiniteTensorsAreNamed() throws {
        let b = try base()
        var model = try fineTuned(b)
        model.set("evil.extra", Tensor(shape: [2], repeating: 1))
        model.remove("bert.encoder.dense.bias")
        model.set("bert.embeddings.norm.weight", Tensor(shape: [5], repeating: 1))
        model.set("bert.embeddings.word.weight", Tensor(shape: [5, 4], repeating: .nan))
        let violations = Plausibility.check(model: model, statistics: nil, base: b).violations
        XCTAssertTrue(violations.contains { $0.kind == .unexpectedTensor && $0.tensor == "evil.extra" }, "\(violations)")
        XCTAssertTrue(violations.contains { $0.kind == .missingTensor && $0.tensor == "encoder.dense.bias" }, "\(violations)")
        XCTAssertTrue(violations.contains { $0.kind == .shape && $0.tensor == "bert.embeddings.norm.weight" }, "\(violations)")
        XCTAssertTrue(violations.contains { $0.kind == .nonFinite && $0.tensor == "bert.embeddings.word.weight" }, "\(violations)")
    }

    func testHugeHeadIsRejected() throws {
        let b = try base()
        var model = try fineTuned(b)
        model.set("classifier.weight", Tensor(shape: [2, 4], repeating: 1e30))
        let violations = Plausibility.check(model: model, statistics: nil, base: b).violations
        XCTAssertEqual(violations.map(\.kind), [.headValue])
    }

    /// G = Q diag(λ) Qᵀ with Q a rotation, so its eigenvalues are λ by construction.
    private func gram(eigenvalues λ: [Double]) -> Tensor<Float> {
        let n = λ.count
        // Q: a product of Givens rotations by fixed angles (orthogonal by construction).
        var q = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n { q[i][i] = 1 }
        for (i, angle) in [(0, 0.7), (1, 1.1), (2, -0.4)] where i + 1 < n {
            let c = cos(angle), s = sin(angle)
            for row in 0..<n {
                let a = q[row][i], b = q[row][i + 1]
                q[row][i] = c * a - s * b
                q[row][i + 1] = s * a + c * b
            }
        }
        var g = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { g[i * n + j] = Float((0..<n).reduce(0.0) { $0 + q[i][$1] * λ[$1] * q[j][$1] }) } }
        // Exact symmetry in fp32 (the two triangles rounded alike).
        for i in 0..<n { for j in 0..<i { g[i * n + j] = g[j * n + i] } }
        return try! Tensor(shape: [n, n], storage: g)
    }

    private func statistics(gram: Tensor<Float>, rows: String? = "100") -> NamedStatistics {
        var tensors = NamedTensors()
        tensors.set("bert.encoder.dense.gram", gram)
        return NamedStatistics(tensors: tensors, metadata: rows.map { ["bert.encoder.dense.gram.num_rows": $0] } ?? [:])
    }

    func testGramPositiveSemidefiniteWithinToleranceAndNotBeyond() throws {
        let b = try base()
        let model = try fineTuned(b)
        // Largest eigenvalue 10, so the largest diagonal entry is ≤ 10 and ≥ the mean 16/4 = 4:
        // tolerance 1e-4 allows eigenvalues down to −(4…10)·1e-4, never −0.01.
        let ok = Plausibility.check(model: model, statistics: statistics(gram: gram(eigenvalues: [10, 5, 1, -1e-6])), base: b)
        XCTAssertEqual(ok.violations, [])
        let rankDeficient = Plausibility.check(model: model, statistics: statistics(gram: gram(eigenvalues: [10, 5, 0, 0])), base: b)
        XCTAssertEqual(rankDeficient.violations, [], "a rank-deficient Gram is an honest Gram")
        let indefinite = Plausibility.check(model: model, statistics: statistics(gram: gram(eigenvalues: [10, 5, 1, -0.01])), base: b)
        XCTAssertEqual(indefinite.violations.map(\.kind), [.notPositiveSemidefinite])
        let negated = Plausibility.check(model: model, statistics: statistics(gram: gram(eigenvalues: [10, 5, 1, 0.5]).scaled(-1)), base: b)
        XCTAssertEqual(negated.violations.map(\.kind), [.notPositiveSemidefinite])
    }

    func testGramAsymmetryShapeAndRowCountAreChecked() throws {
        let b = try base()
        let model = try fineTuned(b)
        var asymmetric = gram(eigenvalues: [10, 5, 1, 0.5])
        asymmetric.storage[1] += 0.5
        XCTAssertEqual(Plausibility.check(model: model, statistics: statistics(gram: asymmetric), base: b).violations.map(\.kind), [.asymmetric])
        let wrongShape = Tensor<Float>.identity(3)
        XCTAssertEqual(Plausibility.check(model: model, statistics: statistics(gram: wrongShape), base: b).violations.map(\.kind), [.shape])
        let good = gram(eigenvalues: [10, 5, 1, 0.5])
        XCTAssertEqual(Plausibility.check(model: model, statistics: statistics(gram: good, rows: nil), base: b).violations.map(\.kind), [.numRows])
        XCTAssertEqual(Plausibility.check(model: model, statistics: statistics(gram: good, rows: "-3"), base: b).violations.map(\.kind), [.numRows])
    }

    func testFisherMustBeNonNegativeAndShaped() throws {
        let b = try base()
        let model = try fineTuned(b)
        var tensors = NamedTensors()
        tensors.set("bert.encoder.dense.bias.fisher", try Tensor(shape: [3], storage: [0.1, -0.2, 0.3]))
        tensors.set("bert.encoder.dense.weight.fisher", Tensor(shape: [4, 3], repeating: 0.1))
        tensors.set("nowhere.fisher", Tensor(shape: [1], repeating: 0.1))
        let kinds = Plausibility.check(model: model, statistics: NamedStatistics(tensors: tensors), base: b).violations.map(\.kind)
        XCTAssertEqual(Set(kinds), [.negativeFisher, .shape, .unexpectedStatistic])
    }
}

private extension Tensor where Scalar == Float {
    func scaled(_ factor: Float) -> Tensor { var t = self; t.storage = t.storage.map { $0 * factor }; return t }
}
