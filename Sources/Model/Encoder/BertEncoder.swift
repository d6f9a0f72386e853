// BertEncoder: the BERT encoder with Hugging Face parameter names, its optional sequence
// classification head, and the bookkeeping its forward and backward share. The forward pass is
// in BertForward.swift, the backward in BertBackward.swift, activations in BertActivations.swift.

import LinAlg

public final class BertEncoder {
    public let config: BertConfig
    public let parameters: ParameterStore
    /// Collectors whose hooks the forward/backward call (statistics passes only).
    public var collectors: [any StatisticsCollector] = []
    /// Dropout randomness for training forwards; reseed it for reproducible steps.
    public var dropoutRNG: SplitMix64

    struct LayerSites {
        let query, key, value, attentionOutput, intermediate, output: LinearSite
        let ln1Weight, ln1Bias, ln2Weight, ln2Bias: Int
    }

    let wte, wpe, wtt, embLNWeight, embLNBias: Int
    let layers: [LayerSites]
    let pooler: LinearSite
    let classifier: LinearSite?
    let acts = BertActivations()
    /// The input of the last forward (its ids, mask and types feed the backward).
    var current: EncoderInput?
    var currentTraining = false

    /// Every linear in forward order (q, k, v, attention output, intermediate, output per layer,
    /// then pooler and classifier).
    public var linearSites: [LinearSite] {
        layers.flatMap { [$0.query, $0.key, $0.value, $0.attentionOutput, $0.intermediate, $0.output] }
            + [pooler] + (classifier.map { [$0] } ?? [])
    }

    /// Parameter names and shapes in HF BertModel naming (unprefixed), classifier or masked-LM head last.
    public static func layout(_ c: BertConfig) -> [(name: String, shape: [Int])] {
        let (C, I) = (c.hiddenSize, c.intermediateSize)
        var l: [(String, [Int])] = [
            ("embeddings.word_embeddings.weight", [c.vocabSize, C]),
            ("embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, C]),
            ("embeddings.token_type_embeddings.weight", [c.typeVocabSize, C]),
            ("embeddings.LayerNorm.weight", [C]), ("embeddings.LayerNorm.bias", [C]),
        ]
        for i in 0..<c.numHiddenLayers {
            let p = "encoder.layer.\(i)."
            for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] {
                l += [(p + n + ".weight", [C, C]), (p + n + ".bias", [C])]
            }
            l += [(p + "attention.output.LayerNorm.weight", [C]), (p + "attention.output.LayerNorm.bias", [C])]
            l += [(p + "intermediate.dense.weight", [I, C]), (p + "intermediate.dense.bias", [I])]
            l += [(p + "output.dense.weight", [C, I]), (p + "output.dense.bias", [C])]
            l += [(p + "output.LayerNorm.weight", [C]), (p + "output.LayerNorm.bias", [C])]
        }
        l += [("pooler.dense.weight", [C, C]), ("pooler.dense.bias", [C])]
        if c.numLabels > 0 { l += [("classifier.weight", [c.numLabels, C]), ("classifier.bias", [c.numLabels])] }
        if c.maskedLMHead {
            // BertForMaskedLM's head; its decoder weight is the word embeddings (tied), so only
            // the decoder bias is a tensor of its own.
            l += [("cls.predictions.transform.dense.weight", [C, C]), ("cls.predictions.transform.dense.bias", [C]),
                  ("cls.predictions.transform.LayerNorm.weight", [C]), ("cls.predictions.transform.LayerNorm.bias", [C]),
                  ("cls.predictions.bias", [c.vocabSize])]
        }
        return l
    }

    /// A freshly initialised model as HF's `_init_weights` does it: linear and embedding weights
    /// N(0, initializer_range²), biases 0, LayerNorm weight 1 / bias 0.
    /// `randomize: false` leaves every parameter at zero (the loader fills them).
    public convenience init(config: BertConfig, seed: UInt64 = 0, randomize: Bool = true) {
        self.init(config: config, parameters: ParameterStore(layout: Self.layout(config)), seed: seed)
        if randomize {
            var rng = SplitMix64(seed: seed)
            for e in parameters.entries { initialize(e, using: &rng) }
        }
    }

    /// A second encoder over `model`'s parameters (shared, not copied) with activation buffers of
    /// its own: concurrent inference on another thread. Neither may train while both are in use.
    public convenience init(sharingParametersOf model: BertEncoder) {
        self.init(config: model.config, parameters: model.parameters, seed: 0)
    }

    private init(config: BertConfig, parameters: ParameterStore, seed: UInt64) {
        self.config = config
        self.parameters = parameters
        dropoutRNG = SplitMix64(seed: seed ^ 0xD0D0)
        let p = parameters
        func site(_ name: String, _ inDim: Int, _ outDim: Int, perExample: Bool = false) -> LinearSite {
            LinearSite(name: name, inDim: inDim, outDim: outDim, perExample: perExample,
                       weightOffset: p.offset(name + ".weight"), biasOffset: p.offset(name + ".bias"))
        }
        let (C, I) = (config.hiddenSize, config.intermediateSize)
        wte = p.offset("embeddings.word_embeddings.weight")
        wpe = p.offset("embeddings.position_embeddings.weight")
        wtt = p.offset("embeddings.token_type_embeddings.weight")
        embLNWeight = p.offset("embeddings.LayerNorm.weight")
        embLNBias = p.offset("embeddings.LayerNorm.bias")
        layers = (0..<config.numHiddenLayers).map { i in
            let q = "encoder.layer.\(i)."
            return LayerSites(query: site(q + "attention.self.query", C, C), key: site(q + "attention.self.key", C, C),
                              value: site(q + "attention.self.value", C, C),
                              attentionOutput: site(q + "attention.output.dense", C, C),
                              intermediate: site(q + "intermediate.dense", C, I), output: site(q + "output.dense", I, C),
                              ln1Weight: p.offset(q + "attention.output.LayerNorm.weight"),
                              ln1Bias: p.offset(q + "attention.output.LayerNorm.bias"),
                              ln2Weight: p.offset(q + "output.LayerNorm.weight"), ln2Bias: p.offset(q + "output.LayerNorm.bias"))
        }
        pooler = site("pooler.dense", C, C, perExample: true)
        classifier = config.numLabels > 0 ? site("classifier", C, config.numLabels, perExample: true) : nil
    }

    /// HF init of one parameter: LayerNorm weight 1, other weights N(0, initializer_range²), biases 0.
    func initialize(_ e: ParameterStore.Entry, using rng: inout SplitMix64) {
        let v = parameters.values.baseAddress! + e.offset
        if e.name.contains("LayerNorm.weight") {
            v.update(repeating: 1, count: e.count)
        } else if e.name.hasSuffix(".weight") {
            for i in 0..<e.count { v[i] = Float(rng.nextNormal() * config.initializerRange) }
        } else {
            v.update(repeating: 0, count: e.count)
        }
    }

    /// A model with `base`'s encoder weights and a new classifier (random N(0, init²), bias 0)
    /// for `labels`: the starting point of fine-tuning. A masked-LM head of `base` is left behind.
    public convenience init(base: BertEncoder, labels: [String], problemType: BertConfig.ProblemType,
                            pooling: BertConfig.Pooling, seed: UInt64) {
        var c = base.config
        c.labels = labels
        c.problemType = problemType
        c.pooling = pooling
        c.maskedLMHead = false
        self.init(config: c, seed: seed, randomize: false)
        var rng = SplitMix64(seed: seed)
        for e in parameters.entries where e.name.hasPrefix("classifier.") { initialize(e, using: &rng) }
        for e in base.parameters.entries where !e.name.hasPrefix("classifier.") && !e.name.hasPrefix("cls.") {
            (parameters.values.baseAddress! + parameters.offset(e.name))
                .update(from: base.parameters.values.baseAddress! + e.offset, count: e.count)
        }
    }

    @inline(__always) var P: UnsafeMutablePointer<Float> { parameters.values.baseAddress! }
    @inline(__always) var G: UnsafeMutablePointer<Float> { parameters.gradients.baseAddress! }
}
