// KFACOutputCollector: for one-token inputs the output gradient of any linear is the gradient
// of log p(y|x) w.r.t. its bias, so Σ_y p_y g_y g_yᵀ can be rebuilt from central finite
// differences of log p_y in the bias; at the classifier it is diag(p) − ppᵀ exactly.

import LinAlg
@testable import Model
import XCTest

final class KFACOutputCollectorTests: XCTestCase {
    func logProbabilities(_ model: BertEncoder, _ input: EncoderInput) throws -> [Double] {
        try model.forward(input)
        let z = model.logits.storage.map(Double.init)
        let m = z.max()!
        let lse = m + log(z.map { exp($0 - m) }.reduce(0, +))
        return z.map { $0 - lse }
    }

    func testOutputFactorMatchesFiniteDifferenceGradientsAndClosedForm() throws {
        let model = tinyStatisticsModel(labels: 3)
        let kfac = KFACOutputCollector()
        var rng = SplitMix64(seed: 2)
        let inputs = try [[Int32(5)], [Int32(17)]].map { try EncoderInput(sequences: [$0]) }
        for input in inputs {
            model.collectors = [kfac]
            try StatisticsRun.backwardPasses(model: model, input: input, plan: StatisticsPlan(), rng: &rng) { _ in }
            kfac.finishExample()
            model.collectors = []
        }
        let K = 3
        for linear in ["encoder.layer.0.intermediate.dense", "encoder.layer.1.attention.output.dense", "pooler.dense", "classifier"] {
            let bias = model.parameters.value(linear + ".bias")
            let d = model.parameters.entry(linear + ".bias")!.count
            var truth = [Double](repeating: 0, count: d * d)
            for input in inputs {
                let p = try logProbabilities(model, input).map(exp)
                // g_y[o] = ∂ log p_y / ∂ bias[o] by central differences (ε = 1e-2, Float forward).
                var g = [[Double]](repeating: [Double](repeating: 0, count: d), count: K)
                for o in 0..<d {
                    let saved = bias[o]
                    bias[o] = saved + 1e-2
                    let plus = try logProbabilities(model, input)
                    bias[o] = saved - 1e-2
                    let minus = try logProbabilities(model, input)
                    bias[o] = saved
                    for y in 0..<K { g[y][o] = (plus[y] - minus[y]) / (Double(saved + 1e-2) - Double(saved - 1e-2)) }
                }
                for y in 0..<K { for i in 0..<d { for j in 0..<d { truth[i * d + j] += p[y] * g[y][i] * g[y][j] } } }
            }
            let f = try XCTUnwrap(kfac.factor(of: linear), linear)
            let scale = truth.map(abs).max()!
            XCTAssertGreaterThan(scale, 1e-3, "\(linear): vanishing gradients make the check vacuous")
            // FD error ≈ 1e-4 on gradients of order 0.1–1, so 2% of the largest entry.
            for k in 0..<(d * d) { XCTAssertEqual(Double(f.storage[k]), truth[k], accuracy: 0.02 * scale, "\(linear)[\(k)]") }
            XCTAssertEqual(kfac.rows(of: linear), 2, linear)
        }
        // Classifier closed form: Σ_x diag(p) − ppᵀ.
        var closed = [Double](repeating: 0, count: K * K)
        for input in inputs {
            let p = try logProbabilities(model, input).map(exp)
            for i in 0..<K { for j in 0..<K { closed[i * K + j] += (i == j ? p[i] : 0) - p[i] * p[j] } }
        }
        let f = kfac.factor(of: "classifier")!
        for k in 0..<(K * K) { XCTAssertEqual(Double(f.storage[k]), closed[k], accuracy: 1e-6) }
    }
}
