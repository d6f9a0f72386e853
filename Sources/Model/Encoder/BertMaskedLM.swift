// The masked-language-model head of BertForMaskedLM, forward and backward: the last hidden
// states of the selected positions only (gathered before the vocabulary projection, so the
// V-wide product costs M·V·C for M selected tokens rather than B·T·V·C), transform dense → GELU →
// LayerNorm, then logits against the word embeddings (tied decoder) plus a bias; mean
// cross-entropy over the selected tokens. The encoder below it is BertForward/BertBackward.

import LinAlg

/// Buffers of the head for M selected positions, C = hidden size, V = vocabulary size.
final class MaskedLMActivations {
    // (M, C): gathered hidden states, transform.dense output, its GELU, its LayerNorm (decoder input)
    let rows = FloatBuffer(), pre = FloatBuffer(), act = FloatBuffer(), out = FloatBuffer()
    // (M)
    let mean = FloatBuffer(), rstd = FloatBuffer()
    // (M, V); `logits` is reused for ∂loss/∂logits in the backward
    let logits = FloatBuffer(), probs = FloatBuffer()
    // (M, C) backward scratch
    let dOut = FloatBuffer(), dAct = FloatBuffer(), dPre = FloatBuffer(), dRows = FloatBuffer()

    func reserve(m: Int, c: Int, v: Int) {
        for b in [rows, pre, act, out, dOut, dAct, dPre, dRows] { b.reserve(m * c) }
        for b in [mean, rstd] { b.reserve(m) }
        for b in [logits, probs] { b.reserve(m * v) }
    }
}

/// The masked-LM loss of one batch: mean cross-entropy over its selected tokens, and how many
/// of them the model's top prediction got right.
public struct MaskedLMScore: Sendable, Equatable {
    public var loss: Double
    public var predictions: Int
    public var correct: Int
}

extension BertEncoder {
    /// Forward (dropout when `training`), mean cross-entropy over the selected tokens, and
    /// backward: adds ∂loss/∂θ into `parameters.gradients`. Returns the loss (0 without
    /// selected tokens, with no gradient).
    @discardableResult
    public func maskedLMLossAndGradients(_ batch: MaskedTokens, training: Bool = true) throws -> Double {
        let score = try maskedLMForward(batch, training: training, backward: true)
        guard score.predictions > 0 else { return 0 }
        maskedLMBackward(batch)
        return score.loss
    }

    /// The masked-LM loss and top-1 hits of the model as it is (no dropout, no gradients).
    public func maskedLMScore(_ batch: MaskedTokens) throws -> MaskedLMScore {
        try maskedLMForward(batch, training: false, backward: false)
    }

    /// Logits (M, V) at the selected positions of `batch`, for the model as it is.
    public func maskedLMLogits(_ batch: MaskedTokens) throws -> Tensor<Float> {
        let m = try maskedLMForward(batch, training: false, backward: false).predictions
        let n = m * config.vocabSize
        return try Tensor(shape: [m, config.vocabSize], storage: Array(UnsafeBufferPointer(start: acts.maskedLM.logits.pointer, count: n)))
    }

    /// Offsets of the head's parameters (the decoder weight is the word embeddings at `wte`).
    private var maskedLMSites: (dense: LinearSite, lnWeight: Int, lnBias: Int, bias: Int) {
        let p = parameters, C = config.hiddenSize
        return (LinearSite(name: "cls.predictions.transform.dense", inDim: C, outDim: C, perExample: false,
                           weightOffset: p.offset("cls.predictions.transform.dense.weight"),
                           biasOffset: p.offset("cls.predictions.transform.dense.bias")),
                p.offset("cls.predictions.transform.LayerNorm.weight"), p.offset("cls.predictions.transform.LayerNorm.bias"),
                p.offset("cls.predictions.bias"))
    }

    private func maskedLMForward(_ batch: MaskedTokens, training: Bool, backward: Bool) throws -> MaskedLMScore {
        guard config.maskedLMHead else { throw EncoderError.noMaskedLMHead }
        let input = batch.input
        guard batch.labels.count == batch.positions.count else {
            throw EncoderError.inputShapeMismatch(what: "masked-LM labels", expected: batch.positions.count, actual: batch.labels.count)
        }
        for r in batch.positions where r < 0 || Int(r) >= input.rows {
            throw EncoderError.tokenOutOfRange(what: "masked position", value: r, limit: input.rows)
        }
        for l in batch.labels where l < 0 || Int(l) >= config.vocabSize {
            throw EncoderError.tokenOutOfRange(what: "masked-LM label", value: l, limit: config.vocabSize)
        }
        try forward(input, training: training, head: false, backward: backward)
        let (M, C, V) = (batch.positions.count, config.hiddenSize, config.vocabSize)
        guard M > 0 else { return MaskedLMScore(loss: 0, predictions: 0, correct: 0) }
        let h = acts.maskedLM, s = maskedLMSites
        h.reserve(m: M, c: C, v: V)
        // rows (M, C) = last hidden states at the selected positions
        let x = layers.isEmpty ? acts.embOut.pointer : acts.layer(layers.count - 1).out.pointer
        for (i, r) in batch.positions.enumerated() { (h.rows.pointer + i * C).update(from: x + Int(r) * C, count: C) }
        // transform: pre = rows·Wtᵀ + bt; act = GELU(pre); out = LN(act)
        linear(s.dense, out: h.pre.pointer, inp: h.rows.pointer, rows: M)
        geluForward(out: h.act.pointer, inp: h.pre.pointer, count: M * C)
        layerNormForward(out: h.out.pointer, mean: h.mean.pointer, rstd: h.rstd.pointer, inp: h.act.pointer,
                         weight: P + s.lnWeight, bias: P + s.lnBias, rows: M, dim: C, eps: config.layerNormEps)
        // decoder: logits (M, V) = out·wteᵀ + bias (the word embeddings (V, C) are the decoder weight)
        linearForward(out: h.logits.pointer, inp: h.out.pointer, weight: P + wte, bias: P + s.bias, rows: M, inDim: C, outDim: V)
        let loss = batch.labels.withUnsafeBufferPointer { y in
            softmaxCrossEntropyForward(probs: h.probs.pointer, logits: h.logits.pointer, labels: y.baseAddress!, batch: M, classes: V)
        }
        var correct = 0
        for i in 0..<M {
            let p = h.probs.pointer + i * V
            var best = 0
            for j in 1..<V where p[j] > p[best] { best = j }
            if best == Int(batch.labels[i]) { correct += 1 }
        }
        return MaskedLMScore(loss: loss, predictions: M, correct: correct)
    }

    /// Mirrors maskedLMForward from the loss down to the encoder's output, then runs the encoder's backward.
    private func maskedLMBackward(_ batch: MaskedTokens) {
        let input = batch.input
        let (M, C, V, N) = (batch.positions.count, config.hiddenSize, config.vocabSize, input.rows)
        let h = acts.maskedLM, s = maskedLMSites
        // loss = mean CE → dlogits (M, V), written over the logits
        let dLogits = h.logits.pointer
        dLogits.update(repeating: 0, count: M * V)
        batch.labels.withUnsafeBufferPointer { y in
            softmaxCrossEntropyBackward(dlogits: dLogits, probs: h.probs.pointer, labels: y.baseAddress!, batch: M, classes: V)
        }
        // logits = out·wteᵀ + bias: the word embeddings get this second gradient path (the first
        // is the embedding lookup, added by encoderBackward)
        h.dOut.zero(M * C)
        linearBackward(dinp: h.dOut.pointer, dweight: G + wte, dbias: G + s.bias, dout: dLogits, inp: h.out.pointer,
                       weight: P + wte, rows: M, inDim: C, outDim: V)
        // out = LN(act)
        h.dAct.zero(M * C)
        layerNormBackward(dinp: h.dAct.pointer, dweight: G + s.lnWeight, dbias: G + s.lnBias, dout: h.dOut.pointer,
                          inp: h.act.pointer, weight: P + s.lnWeight, mean: h.mean.pointer, rstd: h.rstd.pointer, rows: M, dim: C)
        // act = GELU(pre)
        h.dPre.zero(M * C)
        geluBackward(dinp: h.dPre.pointer, inp: h.pre.pointer, dout: h.dAct.pointer, count: M * C)
        // pre = rows·Wtᵀ + bt
        h.dRows.zero(M * C)
        linearBack(s.dense, dinp: h.dRows.pointer, dout: h.dPre.pointer, inp: h.rows.pointer, rows: M)
        // rows were gathered from the last layer's output: scatter back into dX (N, C), zero elsewhere
        let dX = acts.dX.pointer
        dX.update(repeating: 0, count: N * C)
        for (i, r) in batch.positions.enumerated() {
            let d = dX + Int(r) * C, g = h.dRows.pointer + i * C
            for c in 0..<C { d[c] += g[c] }
        }
        encoderBackward()
    }
}
