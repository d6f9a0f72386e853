// Differentially private Grams (Model/Privacy): the accountant against its closed form, the
// noise's symmetry and variance (a statistical test, fixed seed), clipping in the collector,
// the PSD projection, and the privacy a single known token keeps at ε = 1 — the detection
// rate the Gaussian mechanism's trade-off curve predicts.

import Foundation
import LinAlg
@testable import Model
import SafeTensors
import XCTest

final class GramNoiseTests: XCTestCase {
    func testAccountantMatchesTheZCDPConversion() {
        // ρ for (ε, δ) = (1, 1e-5): (√(ln 1e5 + 1) − √(ln 1e5))², computed independently in Python.
        XCTAssertEqual(PrivacyAccountant.rho(epsilon: 1, delta: 1e-5), 0.0208199383395355, accuracy: 1e-12)
        for eps in [0.5, 1, 2, 4, 8] {
            let rho = PrivacyAccountant.rho(epsilon: eps, delta: 1e-5)
            XCTAssertEqual(PrivacyAccountant.epsilon(rho: rho, delta: 1e-5), eps, accuracy: 1e-9)
            // k mechanisms at multiplier s compose to k/(2s²) = ρ.
            let s = PrivacyAccountant.noiseMultiplier(epsilon: eps, delta: 1e-5, mechanisms: 26)
            XCTAssertEqual(26 / (2 * s * s), rho, accuracy: 1e-12)
        }
    }

    func testNoiseIsSymmetricWithTheStatedVariance() {
        var rng = SplitMix64(seed: 99)
        let d = 40, std = 2.5, draws = 60
        var sum = 0.0, squares = 0.0, n = 0
        for _ in 0..<draws {
            let z = GramNoise.addSymmetricNoise(Tensor<Float>(shape: [d, d]), std: std, using: &rng)
            for i in 0..<d {
                for j in i..<d {
                    XCTAssertEqual(z[i, j], z[j, i])
                    sum += z[i, j]; squares += z[i, j] * z[i, j]; n += 1
                }
            }
        }
        // 49 200 upper-triangle samples: the variance estimate's relative sd is √(2/n) ≈ 0.64%,
        // so 3.5% is over 5 sd; the mean's sd is σ/√n ≈ 0.011.
        let mean = sum / Double(n), variance = squares / Double(n) - mean * mean
        XCTAssertEqual(variance / (std * std), 1, accuracy: 0.035)
        XCTAssertEqual(mean, 0, accuracy: 0.06)
    }

    func testClippingBoundsEveryRowAndLeavesShortRowsAlone() {
        let d = 4, clip = 0.5
        let bound = Float(clip * Double(d).squareRoot())          // 1.0
        let rows: [Float] = [3, 4, 0, 0,                            // norm 5 → scaled to 1
                             0.3, 0, 0.4, 0]                        // norm 0.5 → kept
        let site = LinearSite(name: "lin", inDim: d, outDim: 2, perExample: false, weightOffset: 0, biasOffset: 0)
        let collector = GramCollector(clip: clip)
        rows.withUnsafeBufferPointer { collector.observeInput(of: [site], rows: $0.baseAddress!, count: 2) }
        let g = collector.gram(of: "lin")!
        // Closed form: (0.6, 0.8)ᵀ(0.6, 0.8)·(1−1e-6)² + (0.3, 0.4)ᵀ(0.3, 0.4) in the used coordinates.
        XCTAssertEqual(Double(g[0, 0]), 0.36 + 0.09, accuracy: 1e-5)
        XCTAssertEqual(Double(g[1, 1]), 0.64, accuracy: 1e-5)
        XCTAssertEqual(Double(g[0, 1]), 0.48, accuracy: 1e-5)
        XCTAssertEqual(Double(g[2, 2]), 0.16, accuracy: 1e-6)
        XCTAssertEqual(Double(g[0, 2]), 0.12, accuracy: 1e-6)
        // The trace is the sum of squared row norms: each ≤ bound².
        XCTAssertLessThanOrEqual(Double(g[0, 0] + g[1, 1] + g[2, 2] + g[3, 3]), 2 * Double(bound * bound) + 1e-6)
        XCTAssertLessThanOrEqual(Double(g[0, 0] + g[1, 1]), Double(bound * bound) + 0.09 + 1e-6)
    }

    func testProjectionToPSDIsTheEigenvalueClamp() throws {
        // A = diag(3, −2, 1) rotated; the nearest PSD matrix is the same rotation of diag(3, 0, 1).
        let c = 0.6, s = 0.8
        let r = Tensor<Double>(rows: [[c, -s, 0], [s, c, 0], [0, 0, 1]])
        let a = try matmul(try matmul(r, Tensor<Double>(rows: [[3, 0, 0], [0, -2, 0], [0, 0, 1]])), r.transposed())
        let expected = try matmul(try matmul(r, Tensor<Double>(rows: [[3, 0, 0], [0, 0, 0], [0, 0, 1]])), r.transposed())
        let p = try PositiveSemidefinite.nearest(a)
        XCTAssertEqual(p.mostNegative, -2, accuracy: 1e-12)
        XCTAssertLessThan(p.matrix.maxAbsDifference(expected), 1e-12)
    }

    func testPrivatizedStatisticsAreSymmetricPSDAndCarryTheirAccounting() throws {
        // A tiny model's real statistics pass with gram_noise: every Gram symmetric and PSD, σ as stated.
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "plot", "the", "a"]
        let tokenizer = try WordPieceTokenizer(tokens: vocab)
        let texts = ["the movie good", "a plot bad", "bad bad movie", "good", "the plot", "a good movie plot"]
        let data = LabeledDataset(examples: texts.enumerated().map { LabeledExample(text: $1, labels: [$0 % 2]) },
                                  labelNames: ["L0", "L1"], isMultiLabel: false)
        var plan = StatisticsPlan()
        plan.gramBatches = 2; plan.batchSize = 3; plan.maxLength = 8
        plan.gramNoise = GramNoiseSettings(epsilon: 2, delta: 1e-5, clip: 0.5, seed: 3)
        let out = try StatisticsRun.collect(model: tinyStatisticsModel(), tokenizer: tokenizer, data: data, plan: plan, showProgress: false)
        let accounting = try JSONDecoder().decode(GramNoiseAccounting.self, from: Data(out.metadata["gram.privacy"]!.utf8))
        // Stored Grams of the 2-layer model: 4 per layer + pooler + classifier, plus 2 counts.
        XCTAssertEqual(accounting.mechanisms, 2 * 4 + 2 + 2)
        let s = PrivacyAccountant.noiseMultiplier(epsilon: 2, delta: 1e-5, mechanisms: 12)
        XCTAssertEqual(accounting.noiseMultiplier, s, accuracy: 1e-12)
        // σ = s·Δ: token-level Δ = L·(clip√d)² = 8·0.25·8 = 16 for d = 8; pooled Δ = 0.25·8 = 2.
        XCTAssertEqual(accounting.gramStd["bert.encoder.layer.0.attention.self.query"]!, s * 16, accuracy: 1e-9)
        XCTAssertEqual(accounting.gramStd["bert.encoder.layer.1.output.dense"]!, s * 8 * 0.25 * 12, accuracy: 1e-9)
        XCTAssertEqual(accounting.gramStd["classifier"]!, s * 2, accuracy: 1e-9)
        for (name, g) in out.tensors where name.hasSuffix(".gram") {
            let d = g.shape[0]
            for i in 0..<d { for j in 0..<d { XCTAssertEqual(g[i, j], g[j, i], "\(name) not symmetric") } }
            let eigen = try SymmetricEigen(g.converted(to: Double.self))
            let largestDiagonal = (0..<d).map { Double(g[$0, $0]) }.max()!
            XCTAssertGreaterThanOrEqual(eigen.values.first!, -1e-5 * largestDiagonal, "\(name) not PSD")
        }
        XCTAssertGreaterThanOrEqual(Int(out.metadata["classifier.gram.num_rows"]!)!, 1)
    }

    func testDetectionOfOneKnownTokenAtEpsilonOneIsWhatTheAccountantPredicts() {
        // Simple known case: one example's row v (‖v‖ = the clip bound, v along e₀ so its Gram
        // vvᵀ has upper-triangle norm exactly Δ) is either in the Gram or not. The optimal test
        // projects the released upper triangle on vvᵀ: N(0, σ²) without, N(Δ, σ²) with. At a 5%
        // false-positive rate its recall is Φ(Δ/σ − z₀.₉₅) = Φ(1/s − 1.6449), 1 without noise.
        // For one mechanism at (ε, δ) = (1, 1e-5), s = 4.9006 and the predicted recall is 0.0748.
        let d = 6, clip = 0.5, delta = 1e-5
        let settings = GramNoiseSettings(epsilon: 1, delta: delta, clip: clip)
        let bound = Double(settings.rowBound(inDim: d))
        let sensitivity = bound * bound
        let s = PrivacyAccountant.noiseMultiplier(epsilon: 1, delta: delta, mechanisms: 1)
        let sigma = s * sensitivity
        var present = Tensor<Float>(shape: [d, d]); present.storage[0] = Float(sensitivity)
        let absent = Tensor<Float>(shape: [d, d])
        var rng = SplitMix64(seed: 2024)
        let threshold = 1.6448536269514722 * sigma
        var truePositives = 0, falsePositives = 0
        let draws = 6000
        for _ in 0..<draws {
            if GramNoise.addSymmetricNoise(present, std: sigma, using: &rng)[0, 0] > threshold { truePositives += 1 }
            if GramNoise.addSymmetricNoise(absent, std: sigma, using: &rng)[0, 0] > threshold { falsePositives += 1 }
        }
        let recall = Double(truePositives) / Double(draws), fpr = Double(falsePositives) / Double(draws)
        // sd of the recall estimate √(0.075·0.925/6000) ≈ 0.0034: 0.015 is over 4 sd.
        XCTAssertEqual(recall, 0.07482128710375824, accuracy: 0.015)
        XCTAssertEqual(fpr, 0.05, accuracy: 0.012)
        // And the (ε, δ) guarantee itself: recall ≤ e^ε·FPR + δ.
        XCTAssertLessThanOrEqual(recall, exp(1) * 0.05 + delta + 0.015)
    }
}
