// FisherCollector: on the classifier (a logistic-regression head on the encoder's features h),
// the diagonal Fisher has the closed form mean_x p_k(1−p_k)·h_j² for weight (k, j) and
// mean_x p_k(1−p_k) for bias k — softmax (2 classes) and independent sigmoids alike.

import LinAlg
@testable import Model
import XCTest

final class FisherCollectorTests: XCTestCase {
    let sequences: [[Int32]] = [[2, 5, 9, 11, 3], [2, 7, 3], [2, 20, 21, 3], [2, 6, 8, 10, 12, 14, 3]]

    func check(problem: BertConfig.ProblemType, labels: Int) throws {
        let model = tinyStatisticsModel(labels: labels, problem: problem)
        let C = model.config.hiddenSize
        let fisher = FisherCollector(parameters: model.parameters)
        var rng = SplitMix64(seed: 1)
        var wTruth = [Double](repeating: 0, count: labels * C), bTruth = [Double](repeating: 0, count: labels)
        for s in sequences {
            let input = try EncoderInput(sequences: [s])
            try StatisticsRun.backwardPasses(model: model, input: input, plan: StatisticsPlan(), rng: &rng) { w in
                fisher.observeParameterGradients(model.parameters, weight: w)
            }
            fisher.finishExample()
            // Closed form from this example's classifier input h and logits z.
            try model.forward(input)
            let h = (0..<C).map { Double(model.acts.headIn.pointer[$0]) }
            let z = model.logits.storage.map(Double.init)
            let p: [Double]
            switch problem {
            case .singleLabel: let e = z.map { exp($0 - z.max()!) }; p = e.map { $0 / e.reduce(0, +) }
            case .multiLabel: p = z.map { 1 / (1 + exp(-$0)) }
            }
            for k in 0..<labels {
                let v = p[k] * (1 - p[k]) / Double(sequences.count)
                bTruth[k] += v
                for j in 0..<C { wTruth[k * C + j] += v * h[j] * h[j] }
            }
        }
        XCTAssertEqual(fisher.examples, sequences.count)
        let w = try XCTUnwrap(fisher.fisher(of: "classifier.weight")), b = try XCTUnwrap(fisher.fisher(of: "classifier.bias"))
        // Float gradients squared, summed in Double: relative error ~1e-6.
        for i in 0..<(labels * C) { XCTAssertEqual(Double(w.storage[i]), wTruth[i], accuracy: 1e-5 * wTruth.max()!, "weight[\(i)]") }
        for k in 0..<labels { XCTAssertEqual(Double(b.storage[k]), bTruth[k], accuracy: 1e-5 * bTruth.max()!, "bias[\(k)]") }
        XCTAssertGreaterThan(bTruth.min()!, 1e-3, "probabilities near 0/1 would make the check vacuous")
        // Deeper parameters get a Fisher too, non-negative and not all zero.
        let deep = try XCTUnwrap(fisher.fisher(of: "encoder.layer.0.intermediate.dense.weight"))
        XCTAssertTrue(deep.storage.allSatisfy { $0 >= 0 })
        XCTAssertGreaterThan(deep.storage.max()!, 0)
    }

    /// `.empirical` and `.sampled` use one label per example: the classifier bias's Fisher of one
    /// example is then (e_y − p)² (softmax) or (y − σ)² (sigmoids) for the gold y, or for some
    /// y among the candidates when sampled. Checked per example against the closed form.
    func checkOneLabel(_ variant: FisherLabels, problem: BertConfig.ProblemType, labels: Int) throws {
        let model = tinyStatisticsModel(labels: labels, problem: problem)
        var plan = StatisticsPlan()
        plan.fisherLabels = variant
        var rng = SplitMix64(seed: 3)
        var seen = Set<[Int]>()
        for (i, s) in sequences.enumerated() {
            let fisher = FisherCollector(parameters: model.parameters)
            let gold = problem == .singleLabel ? [i % labels] : [i % labels, (i + 1) % labels]
            var passes = 0
            try StatisticsRun.backwardPasses(model: model, input: try EncoderInput(sequences: [s]), gold: gold, plan: plan, rng: &rng) { w in
                XCTAssertEqual(w, 1); passes += 1
                fisher.observeParameterGradients(model.parameters, weight: w)
            }
            fisher.finishExample()
            XCTAssertEqual(passes, 1, "one backward per example")
            try model.forward(try EncoderInput(sequences: [s]))
            let z = model.logits.storage.map(Double.init)
            let b = try XCTUnwrap(fisher.fisher(of: "classifier.bias")).storage.map(Double.init)
            // Candidate label sets: every class (single) or every 0/1 vector (multi).
            let candidates: [[Int]] = problem == .singleLabel
                ? (0..<labels).map { [$0] }
                : (0..<(1 << labels)).map { m in (0..<labels).filter { m & (1 << $0) != 0 } }
            func closedForm(_ y: [Int]) -> [Double] {
                switch problem {
                case .singleLabel:
                    let e = z.map { exp($0 - z.max()!) }; let p = e.map { $0 / e.reduce(0, +) }
                    return (0..<labels).map { k in pow((y.contains(k) ? 1 : 0) - p[k], 2) }
                case .multiLabel:
                    return (0..<labels).map { k in pow((y.contains(k) ? 1 : 0) - 1 / (1 + exp(-z[k])), 2) }
                }
            }
            let matches = candidates.filter { y in zip(closedForm(y), b).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, $0) } }
            switch variant {
            case .empirical: XCTAssertEqual(matches, [gold.sorted()], "example \(i): the gold label's closed form")
            case .sampled: XCTAssertEqual(matches.count, 1, "example \(i): exactly one candidate label's closed form"); seen.formUnion(matches)
            case .exact: XCTFail("not a one-label variant")
            }
        }
        if variant == .sampled { XCTAssertGreaterThan(seen.count, 1, "draws vary across examples") }
    }

    func testEmpiricalFisherUsesTheGoldLabel() throws {
        try checkOneLabel(.empirical, problem: .singleLabel, labels: 3)
        try checkOneLabel(.empirical, problem: .multiLabel, labels: 3)
    }

    func testSampledFisherUsesOneDrawnLabel() throws {
        try checkOneLabel(.sampled, problem: .singleLabel, labels: 3)
        try checkOneLabel(.sampled, problem: .multiLabel, labels: 3)
    }

    func testClassifierFisherEqualsClosedFormForTwoClassSoftmax() throws { try check(problem: .singleLabel, labels: 2) }

    func testClassifierFisherEqualsClosedFormForIndependentSigmoids() throws { try check(problem: .multiLabel, labels: 3) }
}
