// StatisticsRun: drives the collectors over an agent's data — a no-grad forward pass over N
// batches for the Grams, then per-example backward passes of log p(y|x) for the Fisher and
// K-FAC collectors (exact over labels up to 32 classes, sampled beyond) — and writes
// stats.safetensors with the saved model's tensor names.

import Console
import Foundation
import LinAlg
import SafeTensors
import RoundContract

public struct StatisticsPlan: Sendable, Equatable {
    public var gramBatches = 16
    public var batchSize = 16
    public var maxLength = 128
    public var fisherExamples = 0
    public var kfacExamples = 0
    /// Labels y drawn from p(y|x) per example when there are more than `exactLabelLimit` classes.
    public var sampledLabels = 8
    public var exactLabelLimit = 32
    /// Which labels y the Fisher's expectation runs over (FisherLabels).
    public var fisherLabels: FisherLabels = .exact
    public var seed: UInt64 = 42
    /// Encoders running Gram batches at once (0: the BLAS thread count).
    public var gramWorkers = 0
    /// Differentially private Grams: clip rows during collection, noise the sums (GramNoise.swift).
    public var gramNoise: GramNoiseSettings?
    public init() {}
}

public enum StatisticsRun {
    /// Runs the plan on `data` and returns the tensors and metadata of stats.safetensors.
    public static func collect(model: BertEncoder, tokenizer: WordPieceTokenizer, data: LabeledDataset,
                               plan: StatisticsPlan, showProgress: Bool = true) throws
        -> (tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String]) {
        guard model.config.numLabels > 0 else { throw EncoderError.noClassifier }
        let examples = data.shuffled(seed: plan.seed).examples
        var tensors: [(name: String, tensor: Tensor<Float>)] = []
        var metadata: [String: String] = [:]
        let naming: (String) -> String = { ModelDirectory.savedName($0) }
        let saved = model.collectors
        defer { model.collectors = saved }

        if plan.gramBatches > 0 {
            let batches = min(plan.gramBatches, (examples.count + plan.batchSize - 1) / plan.batchSize)
            let bar = showProgress ? ProgressBar(total: batches, label: "gram") : nil
            let gram = try gramPass(model: model, batches: (0..<batches).map { b in
                examples[(b * plan.batchSize)..<min((b + 1) * plan.batchSize, examples.count)].map(\.text)
            }, tokenizer: tokenizer, plan: plan) { bar?.advance() }
            bar?.finish()
            var out = gram.export(naming: naming)
            if let noise = plan.gramNoise {
                let pooled = Set(model.linearSites.filter(\.perExample).map { naming($0.name) })
                _ = try GramNoise.privatize(tensors: &out.tensors, metadata: &out.metadata, perExampleLinears: pooled,
                                            settings: noise, maxRowsPerExample: plan.maxLength)
            }
            tensors += out.tensors
            metadata.merge(out.metadata) { a, _ in a }
            metadata["gram.num_batches"] = "\(batches)"
        }

        let perExample = max(plan.fisherExamples, plan.kfacExamples)
        if perExample > 0 {
            let fisher = plan.fisherExamples > 0 ? FisherCollector(parameters: model.parameters) : nil
            let kfac = plan.kfacExamples > 0 ? KFACOutputCollector() : nil
            var rng = SplitMix64(seed: plan.seed ^ 0xF15E)
            let n = min(perExample, examples.count)
            let bar = showProgress ? ProgressBar(total: n, label: "fisher/k-fac") : nil
            for i in 0..<n {
                var active: [any StatisticsCollector] = []
                if let fisher, i < plan.fisherExamples { active.append(fisher) }
                if let kfac, i < plan.kfacExamples { active.append(kfac) }
                model.collectors = active.filter { $0 !== fisher }  // Fisher reads gradients after each backward
                try backwardPasses(model: model, input: EncoderInput(tokenizer.batch([examples[i].text], maxLength: plan.maxLength)),
                                   gold: examples[i].labels, plan: plan, rng: &rng) { weight in
                    if let fisher, i < plan.fisherExamples { fisher.observeParameterGradients(model.parameters, weight: weight) }
                }
                for c in active { c.finishExample() }
                bar?.update(completed: i + 1)
            }
            bar?.finish()
            let finished: [(any StatisticsCollector)?] = [fisher, kfac]
            for c in finished.compactMap({ $0 }) {
                let out = c.export(naming: naming)
                tensors += out.tensors
                metadata.merge(out.metadata) { a, _ in a }
            }
            if kfac != nil { metadata[StatisticKey.kfacExamples] = "\(min(plan.kfacExamples, n))" }
            if fisher != nil { metadata["fisher.labels"] = plan.fisherLabels.rawValue }
        }
        let counts = data.labelCounts()
        metadata[StatisticKey.labelCounts] = "[" + counts.map(String.init).joined(separator: ",") + "]"
        metadata["labels"] = String(decoding: try JSONSerialization.data(withJSONObject: model.config.labels), as: UTF8.self)
        return (tensors, metadata)
    }

    /// The Grams of no-grad forwards over `batches`, on `plan.gramWorkers` encoders at once
    /// (0: the BLAS thread count) sharing `model`'s weights, each on its own thread with one
    /// BLAS thread — two threads on one batch left a core idle through every elementwise step
    /// and OpenBLAS's hand-offs. Worker w takes batches w, w + W, … and sums into its own
    /// collector; the collectors are added in worker order, so the Grams do not depend on
    /// timing. `progress` is called (from the workers' threads) after each batch.
    static func gramPass(model: BertEncoder, batches: [[String]], tokenizer: WordPieceTokenizer, plan: StatisticsPlan,
                         progress: @escaping @Sendable () -> Void) throws -> GramCollector {
        let workers = max(1, min(plan.gramWorkers > 0 ? plan.gramWorkers : BLAS.threads, batches.count))
        let encoders = [model] + (1..<workers).map { _ in BertEncoder(sharingParametersOf: model) }
        let collectors = (0..<workers).map { _ in GramCollector(clip: plan.gramNoise?.clip) }
        for (e, c) in zip(encoders, collectors) { e.collectors = [c] }
        func run(_ w: Int) throws {
            for b in stride(from: w, to: batches.count, by: workers) {
                try encoders[w].forward(EncoderInput(tokenizer.batch(batches[b], maxLength: plan.maxLength)))
                progress()
            }
        }
        if workers == 1 { try run(0) } else { try BLAS.concurrentPerform(iterations: workers, throwing: run) }
        for c in collectors.dropFirst() { collectors[0].add(c) }
        return collectors[0]
    }

    /// For one example (batch of 1): forward, then for each label choice a backward of
    /// log p(y|x) with its expectation weight, calling `afterBackward(weight)` with the
    /// parameter gradients of that pass in the store. `gold` is the example's own labels
    /// (used by `.empirical` only).
    /// Single-label: ∂ log p_y/∂z = e_y − p. `.exact`: every y with weight p_y (y ∼ p with 1/S
    /// beyond `exactLabelLimit` classes); `.sampled`: one y ∼ p, weight 1; `.empirical`: the gold y.
    /// Multi-label (independent Bernoullis): `.exact` uses E[g gᵀ] = Σ_k σ_k(1−σ_k) (∂z_k/∂·)(∂z_k/∂·)ᵀ,
    /// so dlogits = e_k with weight σ_k(1−σ_k) for every k; `.sampled` one backward of
    /// ∂ log p(ŷ|x)/∂z = ŷ − σ with ŷ_k ∼ Bernoulli(σ_k); `.empirical` the same with the gold ŷ.
    static func backwardPasses(model: BertEncoder, input: EncoderInput, gold: [Int] = [], plan: StatisticsPlan,
                               rng: inout SplitMix64, afterBackward: (Double) -> Void) throws {
        try model.forward(input, training: false, head: true, backward: true)
        let z = model.logits.storage.map(Double.init)
        let K = z.count
        var passes: [(dlogits: [Float], weight: Double)] = []
        func draw(_ p: [Double]) -> Int {
            var u = Double.random(in: 0..<1, using: &rng), y = K - 1
            for k in 0..<K { u -= p[k]; if u < 0 { y = k; break } }
            return y
        }
        switch model.config.problemType {
        case .singleLabel:
            let m = z.max()!
            let e = z.map { exp($0 - m) }
            let s = e.reduce(0, +)
            let p = e.map { $0 / s }
            func pass(_ y: Int, _ w: Double) -> ([Float], Double) {
                ((0..<K).map { Float(($0 == y ? 1 : 0) - p[$0]) }, w)
            }
            switch plan.fisherLabels {
            case .exact where K <= plan.exactLabelLimit:
                passes = (0..<K).map { pass($0, p[$0]) }
            case .exact:
                passes = (0..<plan.sampledLabels).map { _ in pass(draw(p), 1 / Double(plan.sampledLabels)) }
            case .sampled:
                passes = [pass(draw(p), 1)]
            case .empirical:
                guard let y = gold.first, (0..<K).contains(y) else { throw EncoderError.labelOutOfRange(label: gold.first ?? -1, numLabels: K) }
                passes = [pass(y, 1)]
            }
        case .multiLabel:
            let sigma = z.map { 1 / (1 + exp(-$0)) }
            switch plan.fisherLabels {
            case .exact:
                passes = (0..<K).map { k in ((0..<K).map { $0 == k ? Float(1) : 0 }, sigma[k] * (1 - sigma[k])) }
            case .sampled:
                let y = sigma.map { Double.random(in: 0..<1, using: &rng) < $0 ? 1.0 : 0.0 }
                passes = [((0..<K).map { Float(y[$0] - sigma[$0]) }, 1)]
            case .empirical:
                if let bad = gold.first(where: { !(0..<K).contains($0) }) { throw EncoderError.labelOutOfRange(label: bad, numLabels: K) }
                let on = Set(gold)
                passes = [((0..<K).map { Float((on.contains($0) ? 1 : 0) - sigma[$0]) }, 1)]
            }
        }
        for (d, w) in passes where w > 0 {
            model.parameters.zeroGradients()
            d.withUnsafeBufferPointer { model.backward(dlogits: $0.baseAddress!, weight: w) }
            afterBackward(w)
        }
    }

    /// Collects and writes stats.safetensors atomically.
    public static func write(model: BertEncoder, tokenizer: WordPieceTokenizer, data: LabeledDataset, plan: StatisticsPlan,
                             to path: String, showProgress: Bool = true) throws {
        let out = try collect(model: model, tokenizer: tokenizer, data: data, plan: plan, showProgress: showProgress)
        try SafeTensorsWriter.write(tensors: out.tensors, metadata: out.metadata, to: path)
    }
}
