// LossBarrier: the loss along the straight line between two models, θ(λ) = λθ_A + (1−λ)θ_B,
// and its barrier max_λ L(θ(λ)) − ½(L(θ_A) + L(θ_B)) (how far apart the models' basins are;
// 0 for one basin with a convex path). Classifier cross-entropy on a labelled split, or, for
// two models with the masked-LM head, the masked-LM loss on texts under one fixed masking.

import Foundation
import LinAlg
import Model

public struct BarrierCurve: Sendable, Equatable {
    /// What `loss` and `accuracy` measure.
    public enum Objective: String, Sendable {
        /// Classifier cross-entropy per example, label accuracy.
        case classifier
        /// Masked-LM cross-entropy per selected token, top-1 accuracy on those tokens.
        case maskedLM = "masked-LM"
    }
    public struct Point: Sendable, Equatable {
        public var lambda: Double
        /// Mean cross-entropy (nats per example, or per masked token) and accuracy of θ(λ).
        public var loss: Double
        public var accuracy: Double
        /// Masked-LM curves scored with pseudo-perplexity too (PseudoPerplexity.swift).
        public var pseudoPerplexity: Double? = nil
    }
    public var objective: Objective = .classifier
    /// λ from 0 (model B) to 1 (model A).
    public var points: [Point]
    /// Examples scored (classifier), or masked tokens predicted (masked-LM).
    public var examples: Int

    /// max_λ L(θ(λ)) − ½(L(θ_B) + L(θ_A)).
    public var barrier: Double {
        guard let first = points.first, let last = points.last else { return 0 }
        return (points.map(\.loss).max() ?? 0) - (first.loss + last.loss) / 2
    }

    /// max_λ L(θ(λ)) − (λL(θ_A) + (1−λ)L(θ_B)): the rise above the straight line between the
    /// ends. The barrier above is taken from the mean of the ends, so when one model is much
    /// worse than the other it is that model's own excess and hides the curve's shape.
    public var excessOverChord: Double { points.indices.map { chordExcess($0) }.max() ?? 0 }

    func chordExcess(_ k: Int) -> Double {
        guard let first = points.first, let last = points.last else { return 0 }
        let p = points[k]
        return p.loss - (p.lambda * last.loss + (1 - p.lambda) * first.loss)
    }

    /// The pseudo-perplexity barrier, max_λ PPPL(θ(λ)) − ½(PPPL(θ_B) + PPPL(θ_A)), when scored.
    public var pseudoPerplexityBarrier: Double? {
        let values = points.compactMap(\.pseudoPerplexity)
        guard values.count == points.count, let first = values.first, let last = values.last else { return nil }
        return (values.max() ?? 0) - (first + last) / 2
    }

    /// `lambda,loss,accuracy,excess_over_chord` per point, and `pseudo_perplexity` when scored.
    public func csv() -> String {
        let pppl = pseudoPerplexityBarrier != nil
        return "lambda,loss,accuracy,excess_over_chord\(pppl ? ",pseudo_perplexity" : "")\n" + points.indices.map {
            String(format: "%.2f,%.9g,%.6f,%.9g", points[$0].lambda, points[$0].loss, points[$0].accuracy, chordExcess($0))
                + (pppl ? String(format: ",%.9g", points[$0].pseudoPerplexity ?? 0) : "")
        }.joined(separator: "\n") + "\n"
    }

    /// The loss curve over λ, the endpoints' mean dashed, the barrier in the title.
    public func svg(title: String) -> String {
        let (left, top, width, height) = (70.0, 40.0, 460.0, 260.0)
        let losses = points.map(\.loss)
        let lo = min(losses.min() ?? 0, 0), hi = max(losses.max() ?? 1, 1e-9)
        func x(_ l: Double) -> Double { left + width * l }
        func y(_ v: Double) -> Double { top + height * (1 - (v - lo) / (hi - lo)) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(left + width + 30))\" height=\"\(Int(top + height + 60))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<text x=\"\(left)\" y=\"20\" font-size=\"13\">\(Self.escaped(title)): barrier \(String(format: "%.4f", barrier)) nats, \(String(format: "%.4f", excessOverChord)) above the chord</text>\n"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            s += "<line x1=\"\(left)\" y1=\"\(f(y(v)))\" x2=\"\(left + width)\" y2=\"\(f(y(v)))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(String(format: "%.3g", v))</text>\n"
        }
        for p in points {
            s += "<text x=\"\(f(x(p.lambda)))\" y=\"\(top + height + 16)\" text-anchor=\"middle\">\(String(format: "%.1f", p.lambda))</text>\n"
        }
        s += "<text x=\"\(left + width / 2)\" y=\"\(top + height + 34)\" text-anchor=\"middle\">λ (0 = model B, 1 = model A); \(objective.rawValue) cross-entropy</text>\n"
        if let first = points.first, let last = points.last {
            s += "<line x1=\"\(f(x(first.lambda)))\" y1=\"\(f(y(first.loss)))\" x2=\"\(f(x(last.lambda)))\" y2=\"\(f(y(last.loss)))\" stroke=\"#888\" stroke-dasharray=\"5,4\"/>\n"
        }
        s += "<polyline points=\"\(points.map { "\(f(x($0.lambda))),\(f(y($0.loss)))" }.joined(separator: " "))\" fill=\"none\" stroke=\"#4a7ab5\" stroke-width=\"2\"/>\n"
        for p in points { s += "<circle cx=\"\(f(x(p.lambda)))\" cy=\"\(f(y(p.loss)))\" r=\"3\" fill=\"#4a7ab5\"/>\n" }
        return s + "</svg>\n"
    }

    static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

public enum LossBarrier {
    /// Writes θ(λ) = λθ_A + (1−λ)θ_B into `out` (exactly θ_A at λ = 1 and θ_B at λ = 0).
    public static func interpolate(_ a: BertEncoder, _ b: BertEncoder, lambda: Float, into out: BertEncoder) {
        let n = out.parameters.count
        precondition(a.parameters.count == n && b.parameters.count == n, "interpolation needs one layout")
        let pa = a.parameters.values.baseAddress!, pb = b.parameters.values.baseAddress!, po = out.parameters.values.baseAddress!
        for i in 0..<n { po[i] = lambda * pa[i] + (1 - lambda) * pb[i] }
    }

    /// Loss and accuracy of θ(λ) on `data` at `count` evenly spaced λ from 0 to 1.
    public static func curve(a: BertEncoder, b: BertEncoder, tokenizer: WordPieceTokenizer, data: LabeledDataset,
                             count: Int = 11, maxLength: Int = 128, batchSize: Int = 32) throws -> BarrierCurve {
        try SameArchitecture.require(a.config, b.config)
        guard a.config.labels == b.config.labels else { throw AlignmentError.labelsMismatch(reference: a.config.labels, model: b.config.labels) }
        guard a.config.numLabels > 0 else { throw EncoderError.noClassifier }
        precondition(count >= 2, "a curve needs both ends")
        let mixed = BertEncoder(config: a.config, seed: 0, randomize: false)
        var points: [BarrierCurve.Point] = []
        for k in 0..<count {
            let lambda = Double(k) / Double(count - 1)
            interpolate(a, b, lambda: Float(lambda), into: mixed)
            let r = try Evaluation.evaluate(mixed, tokenizer: tokenizer, data: data, maxLength: min(maxLength, a.config.maxPositionEmbeddings),
                                            batchSize: batchSize)
            points.append(.init(lambda: lambda, loss: r.meanLoss, accuracy: r.accuracy))
        }
        return BarrierCurve(points: points, examples: data.count)
    }

    /// Masked-LM loss and top-1 accuracy of θ(λ) on `corpus` at `count` evenly spaced λ, every
    /// point under the same masking (MaskedLMEvaluation's seeded batches); with
    /// `pseudoPerplexitySequences` > 0 also the pseudo-perplexity of that many first sequences.
    public static func maskedLMCurve(a: BertEncoder, b: BertEncoder, corpus: PretrainingCorpus, masking: TokenMasking,
                                     count: Int = 11, batchSize: Int = 32, seed: UInt64 = 0,
                                     pseudoPerplexitySequences: Int = 0) throws -> BarrierCurve {
        try SameArchitecture.require(a.config, b.config)
        guard a.config.maskedLMHead else { throw EncoderError.noMaskedLMHead }
        precondition(count >= 2, "a curve needs both ends")
        let mixed = BertEncoder(config: a.config, seed: 0, randomize: false)
        var points: [BarrierCurve.Point] = []
        var predictions = 0
        for k in 0..<count {
            let lambda = Double(k) / Double(count - 1)
            interpolate(a, b, lambda: Float(lambda), into: mixed)
            let r = try MaskedLMEvaluation.score(mixed, corpus: corpus, masking: masking, batchSize: batchSize, seed: seed)
            let pppl = pseudoPerplexitySequences > 0
                ? try PseudoPerplexity.score(mixed, corpus: corpus, masking: masking, sequences: pseudoPerplexitySequences,
                                             batchSize: batchSize).pseudoPerplexity
                : nil
            points.append(.init(lambda: lambda, loss: r.loss, accuracy: r.accuracy, pseudoPerplexity: pppl))
            predictions = r.predictions
        }
        return BarrierCurve(objective: .maskedLM, points: points, examples: predictions)
    }
}
