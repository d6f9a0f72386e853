// The BERT forward pass, top to bottom as the model runs: embeddings + LayerNorm, N post-LN
// layers (self-attention, residual, LayerNorm, GELU feed-forward, residual, LayerNorm), then the
// head (CLS → pooler dense + tanh, or mean pooling) → dropout → classifier. Dropout only when
// training. Statistics collectors see each linear's non-padding input rows.

import Foundation
import LinAlg

extension BertEncoder {
    /// Runs the forward pass; afterwards `lastHiddenState` and (with a head) `logits` are valid
    /// until the next call. `head: false` stops after the encoder (embeddings, `fedmerge embed`).
    public func forward(_ input: EncoderInput, training: Bool = false, head: Bool = true) throws {
        try forward(input, training: training, head: head, backward: training)
    }

    /// The logits only, for inference: with [CLS] pooling the last layer runs its keys and values
    /// over every position but its query, feed-forward and LayerNorms over the [CLS] rows alone —
    /// the only rows the head reads (1/6 fewer linear FLOPs for MiniLM-L6). `lastHiddenState` is
    /// not valid afterwards. Other poolings, or no classifier, run the full forward.
    func forwardLogits(_ input: EncoderInput) throws {
        try forward(input, training: false, head: true, backward: false, logitsOnly: true)
    }

    /// `backward: true` reserves the gradient buffers a following `backward(dlogits:)` needs.
    func forward(_ input: EncoderInput, training: Bool, head: Bool, backward: Bool, logitsOnly: Bool = false) throws {
        try validate(input)
        let (B, T, C, I, H) = (input.batchSize, input.sequenceLength, config.hiddenSize, config.intermediateSize, config.numAttentionHeads)
        let N = B * T
        let runHead = head && classifier != nil
        let pHidden = training ? config.hiddenDropoutProb : 0
        let pAttn = training ? config.attentionProbsDropoutProb : 0
        acts.reserve(layers: layers.count, b: B, t: T, c: C, i: I, heads: H, labels: config.numLabels,
                     training: training, backward: backward || collectors.contains { $0.needsBackward },
                     collecting: !collectors.isEmpty)
        current = input
        currentTraining = training
        let observing = collectors.filter(\.needsInputs)
        let clsOnly = logitsOnly && runHead && !training && !backward && collectors.isEmpty && config.pooling == .cls && !layers.isEmpty
        let shape = AttentionShape(batch: B, length: T, channels: C, heads: H)
        let eps = config.layerNormEps

        input.inputIDs.withUnsafeBufferPointer { ids in
            input.tokenTypeIDs.withUnsafeBufferPointer { types in
                input.attentionMask.withUnsafeBufferPointer { mask in
                    // embeddings: embSum (N, C) = wte[ids] + wpe[t] + wtt[types]; embOut = LN(embSum), dropped
                    embeddingForward(out: acts.embSum.pointer, ids: ids.baseAddress!, types: types.baseAddress!,
                                     wte: P + wte, wpe: P + wpe, wtt: P + wtt, batch: B, length: T, dim: C)
                    layerNormForward(out: acts.embOut.pointer, mean: acts.embMean.pointer, rstd: acts.embRstd.pointer,
                                     inp: acts.embSum.pointer, weight: P + embLNWeight, bias: P + embLNBias,
                                     rows: N, dim: C, eps: eps)
                    if pHidden > 0 {
                        dropoutMask(acts.embDrop.pointer, count: N * C, p: pHidden, rng: &dropoutRNG)
                        dropoutForward(out: acts.embOut.pointer, inp: acts.embOut.pointer, mask: acts.embDrop.pointer, count: N * C)
                    }

                    var x = acts.embOut.pointer
                    for (l, s) in layers.enumerated() {
                        // Without a backward to follow, every layer runs in the same buffers: x is
                        // the previous layer's `out`, read for the last time by resid1 below,
                        // before this layer overwrites `out`.
                        let a = acts.layer(l)
                        if clsOnly && l == layers.count - 1 {
                            clsLayerForward(s, a, x: x, mask: mask.baseAddress!, shape: shape)
                            x = a.out.pointer
                            break
                        }
                        // self-attention: q, k, v (N, C) from x (N, C); ctx (N, C)
                        linear(s.query, out: a.q.pointer, inp: x, rows: N)
                        linear(s.key, out: a.k.pointer, inp: x, rows: N)
                        linear(s.value, out: a.v.pointer, inp: x, rows: N)
                        observe(observing, [s.query, s.key, s.value], x, mask: mask.baseAddress!, rows: N)
                        if pAttn > 0 {
                            dropoutMask(a.probsDrop.pointer, count: shape.probsCount, p: pAttn, rng: &dropoutRNG)
                            attentionForward(out: a.ctx.pointer, probs: a.probs.pointer, q: a.q.pointer, k: a.k.pointer,
                                             v: a.v.pointer, keyMask: mask.baseAddress!, shape: shape,
                                             dropMask: a.probsDrop.pointer, probsDropped: a.probsDropped.pointer)
                        } else {
                            attentionForward(out: a.ctx.pointer, probs: a.probs.pointer, q: a.q.pointer, k: a.k.pointer,
                                             v: a.v.pointer, keyMask: mask.baseAddress!, shape: shape)
                        }
                        // attention output: attnOut (N, C) = ctx·Woᵀ; resid1 = dropout(attnOut) + x; h1 = LN(resid1)
                        linear(s.attentionOutput, out: a.attnOut.pointer, inp: a.ctx.pointer, rows: N)
                        observe(observing, [s.attentionOutput], a.ctx.pointer, mask: mask.baseAddress!, rows: N)
                        residual(out: a.resid1.pointer, branch: a.attnOut.pointer, skip: x, drop: pHidden > 0 ? a.attnDrop : nil, count: N * C, p: pHidden)
                        layerNormForward(out: a.h1.pointer, mean: a.mean1.pointer, rstd: a.rstd1.pointer, inp: a.resid1.pointer,
                                         weight: P + s.ln1Weight, bias: P + s.ln1Bias, rows: N, dim: C, eps: eps)
                        // feed-forward: ffnPre (N, I) = h1·W1ᵀ; ffnAct = GELU; ffnOut (N, C) = ffnAct·W2ᵀ
                        linear(s.intermediate, out: a.ffnPre.pointer, inp: a.h1.pointer, rows: N)
                        observe(observing, [s.intermediate], a.h1.pointer, mask: mask.baseAddress!, rows: N)
                        geluForward(out: a.ffnAct.pointer, inp: a.ffnPre.pointer, count: N * I)
                        linear(s.output, out: a.ffnOut.pointer, inp: a.ffnAct.pointer, rows: N)
                        observe(observing, [s.output], a.ffnAct.pointer, mask: mask.baseAddress!, rows: N)
                        // resid2 = dropout(ffnOut) + h1; out = LN(resid2): the layer's output (N, C)
                        residual(out: a.resid2.pointer, branch: a.ffnOut.pointer, skip: a.h1.pointer, drop: pHidden > 0 ? a.ffnDrop : nil, count: N * C, p: pHidden)
                        layerNormForward(out: a.out.pointer, mean: a.mean2.pointer, rstd: a.rstd2.pointer, inp: a.resid2.pointer,
                                         weight: P + s.ln2Weight, bias: P + s.ln2Bias, rows: N, dim: C, eps: eps)
                        x = a.out.pointer
                    }
                    // After the [CLS]-only last layer, x holds one row per example.
                    if runHead { headForward(x, mask: mask.baseAddress!, b: B, t: clsOnly ? 1 : T, observing: observing, pDrop: training ? classifierDropout : 0) }
                }
            }
        }
    }

    /// The last layer for the [CLS] rows only (inference, no dropout): k, v (N, C) from x (N, C);
    /// q, ctx and everything after them (B, C) from x's rows at position 0; out (B, C). x may be
    /// `a.out` (the shared inference buffers): its [CLS] rows are gathered into resid2 first.
    private func clsLayerForward(_ s: LayerSites, _ a: BertActivations.Layer, x: UnsafePointer<Float>,
                                 mask: UnsafePointer<Int32>, shape: AttentionShape) {
        let (B, T, C, N, eps) = (shape.batch, shape.length, shape.channels, shape.batch * shape.length, config.layerNormEps)
        linear(s.key, out: a.k.pointer, inp: x, rows: N)
        linear(s.value, out: a.v.pointer, inp: x, rows: N)
        let xcls = a.resid2.pointer
        for b in 0..<B { (xcls + b * C).update(from: x + b * T * C, count: C) }
        linear(s.query, out: a.q.pointer, inp: xcls, rows: B)
        clsAttentionForward(out: a.ctx.pointer, probs: a.probs.pointer, q: a.q.pointer, k: a.k.pointer, v: a.v.pointer,
                            keyMask: mask, shape: shape)
        linear(s.attentionOutput, out: a.attnOut.pointer, inp: a.ctx.pointer, rows: B)
        residual(out: a.resid1.pointer, branch: a.attnOut.pointer, skip: xcls, drop: nil, count: B * C, p: 0)
        layerNormForward(out: a.h1.pointer, mean: a.mean1.pointer, rstd: a.rstd1.pointer, inp: a.resid1.pointer,
                         weight: P + s.ln1Weight, bias: P + s.ln1Bias, rows: B, dim: C, eps: eps)
        linear(s.intermediate, out: a.ffnPre.pointer, inp: a.h1.pointer, rows: B)
        geluForward(out: a.ffnAct.pointer, inp: a.ffnPre.pointer, count: B * config.intermediateSize)
        linear(s.output, out: a.ffnOut.pointer, inp: a.ffnAct.pointer, rows: B)
        residual(out: a.resid2.pointer, branch: a.ffnOut.pointer, skip: a.h1.pointer, drop: nil, count: B * C, p: 0)
        layerNormForward(out: a.out.pointer, mean: a.mean2.pointer, rstd: a.rstd2.pointer, inp: a.resid2.pointer,
                         weight: P + s.ln2Weight, bias: P + s.ln2Bias, rows: B, dim: C, eps: eps)
    }

    var classifierDropout: Float { config.classifierDropout ?? config.hiddenDropoutProb }

    /// The head: headIn (B, C) = tanh(pooler(CLS rows)) or the mean of non-padding rows;
    /// dropout when training; logits (B, K) = classifier(headIn).
    private func headForward(_ x: UnsafeMutablePointer<Float>, mask: UnsafePointer<Int32>, b B: Int, t T: Int,
                             observing: [any StatisticsCollector], pDrop: Float) {
        let C = config.hiddenSize
        let cls = acts.cls.pointer, headIn = acts.headIn.pointer
        switch config.pooling {
        case .cls:
            for b in 0..<B { (cls + b * C).update(from: x + b * T * C, count: C) }
            linear(pooler, out: acts.pooledPre.pointer, inp: cls, rows: B)
            for c in observing { c.observeInput(of: [pooler], rows: cls, count: B) }
            tanhForward(out: acts.pooled.pointer, inp: acts.pooledPre.pointer, count: B * C)
            headIn.update(from: acts.pooled.pointer, count: B * C)
        case .mean:
            meanPool(out: acts.pooled.pointer, x: x, mask: mask, b: B, t: T)
            headIn.update(from: acts.pooled.pointer, count: B * C)
        }
        if pDrop > 0 {
            dropoutMask(acts.headDrop.pointer, count: B * C, p: pDrop, rng: &dropoutRNG)
            dropoutForward(out: headIn, inp: headIn, mask: acts.headDrop.pointer, count: B * C)
        }
        let k = classifier!
        linear(k, out: acts.logits.pointer, inp: headIn, rows: B)
        // The classifier's Gram is over its inputs without dropout (statistics passes never drop).
        for c in observing { c.observeInput(of: [k], rows: headIn, count: B) }
    }

    /// out (B, C) = mean of x (B, T, C) over the positions with mask 1.
    func meanPool(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, mask: UnsafePointer<Int32>, b B: Int, t T: Int) {
        let C = config.hiddenSize
        out.update(repeating: 0, count: B * C)
        for b in 0..<B {
            var n = 0
            let o = out + b * C
            for t in 0..<T where mask[b * T + t] != 0 {
                n += 1
                let r = x + (b * T + t) * C
                for c in 0..<C { o[c] += r[c] }
            }
            let inv = 1 / Float(max(n, 1))
            for c in 0..<C { o[c] *= inv }
        }
    }

    @inline(__always)
    func linear(_ s: LinearSite, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows: Int) {
        linearForward(out: out, inp: inp, weight: P + s.weightOffset, bias: P + s.biasOffset, rows: rows, inDim: s.inDim, outDim: s.outDim)
    }

    /// out = branch·mask + skip (training, with a fresh dropout mask) or branch + skip.
    private func residual(out: UnsafeMutablePointer<Float>, branch: UnsafePointer<Float>, skip: UnsafePointer<Float>,
                          drop: FloatBuffer?, count n: Int, p: Float) {
        if let drop {
            dropoutMask(drop.pointer, count: n, p: p, rng: &dropoutRNG)
            let m = drop.pointer
            for i in 0..<n { out[i] = branch[i] * m[i] + skip[i] }
        } else {
            for i in 0..<n { out[i] = branch[i] + skip[i] }
        }
    }

    /// Hands the non-padding rows of `inp` (N, sites[0].inDim) to the observing collectors.
    private func observe(_ observing: [any StatisticsCollector], _ sites: [LinearSite], _ inp: UnsafePointer<Float>,
                         mask: UnsafePointer<Int32>, rows n: Int) {
        guard !observing.isEmpty else { return }
        let (rows, count) = compactRows(inp, dim: sites[0].inDim, mask: mask, rows: n)
        for c in observing { c.observeInput(of: sites, rows: rows, count: count) }
    }

    /// The rows of src (N, dim) whose mask is 1, gathered into scratch (or src itself when no
    /// row is padding).
    func compactRows(_ src: UnsafePointer<Float>, dim: Int, mask: UnsafePointer<Int32>, rows n: Int) -> (UnsafePointer<Float>, Int) {
        var allValid = true
        for r in 0..<n where mask[r] == 0 { allValid = false; break }
        if allValid { return (src, n) }
        let dst = acts.compact.pointer
        var count = 0
        for r in 0..<n where mask[r] != 0 {
            (dst + count * dim).update(from: src + r * dim, count: dim)
            count += 1
        }
        return (UnsafePointer(dst), count)
    }

    private func validate(_ input: EncoderInput) throws {
        guard input.sequenceLength <= config.maxPositionEmbeddings else {
            throw EncoderError.sequenceTooLong(length: input.sequenceLength, maxPositions: config.maxPositionEmbeddings)
        }
        for id in input.inputIDs where id < 0 || Int(id) >= config.vocabSize {
            throw EncoderError.tokenOutOfRange(what: "input id", value: id, limit: config.vocabSize)
        }
        for id in input.tokenTypeIDs where id < 0 || Int(id) >= config.typeVocabSize {
            throw EncoderError.tokenOutOfRange(what: "token type id", value: id, limit: config.typeVocabSize)
        }
    }

    // MARK: - Results of the last forward

    /// Last hidden states (B, T, C) of the last forward.
    public var lastHiddenState: Tensor<Float> {
        let (B, T, C) = (current!.batchSize, current!.sequenceLength, config.hiddenSize)
        let src = layers.isEmpty ? acts.embOut.pointer : acts.layer(layers.count - 1).out.pointer
        return try! Tensor(shape: [B, T, C], storage: Array(UnsafeBufferPointer(start: src, count: B * T * C)))
    }

    /// Logits (B, K) of the last forward (requires a head).
    public var logits: Tensor<Float> {
        let (B, K) = (current!.batchSize, config.numLabels)
        return try! Tensor(shape: [B, K], storage: Array(UnsafeBufferPointer(start: acts.logits.pointer, count: B * K)))
    }

    /// Runs `body` over the logits (B, K) of the last forward, without copying them.
    func withLogits<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R { try body(acts.logits.pointer) }

    /// Label probabilities (B, K) for `input`: softmax (single-label) or per-label sigmoid (multi-label).
    public func probabilities(_ input: EncoderInput) throws -> Tensor<Float> {
        guard classifier != nil else { throw EncoderError.noClassifier }
        try forward(input)
        let (B, K) = (input.batchSize, config.numLabels)
        let l = logits.storage
        return try Tensor(shape: [B, K], storage: (0..<B).flatMap { config.problemType.probabilities(l[($0 * K)..<(($0 + 1) * K)]) })
    }

    /// Sentence embeddings (B, C): last hidden states mean-pooled over non-padding tokens and
    /// L2-normalised (how all-MiniLM-L6-v2 is used as a sentence encoder).
    public func sentenceEmbeddings(_ input: EncoderInput) throws -> Tensor<Float> {
        try forward(input, head: false)
        let (B, T, C) = (input.batchSize, input.sequenceLength, config.hiddenSize)
        var out = Tensor<Float>(shape: [B, C])
        let src = layers.isEmpty ? acts.embOut.pointer : acts.layer(layers.count - 1).out.pointer
        input.attentionMask.withUnsafeBufferPointer { mask in
            out.withUnsafeMutableBufferPointer { o in
                meanPool(out: o.baseAddress!, x: src, mask: mask.baseAddress!, b: B, t: T)
                for b in 0..<B {
                    let row = o.baseAddress! + b * C
                    var norm = 0.0
                    for c in 0..<C { norm += Double(row[c]) * Double(row[c]) }
                    // sentence-transformers' Normalize uses max(‖x‖, 1e-12).
                    let inv = Float(1 / max(norm.squareRoot(), 1e-12))
                    for c in 0..<C { row[c] *= inv }
                }
            }
        }
        return out
    }
}

extension BertConfig.ProblemType {
    /// Label probabilities of one row of logits: softmax in fp64 (single-label) or a sigmoid
    /// per label (multi-label).
    public func probabilities(_ logits: ArraySlice<Float>) -> [Float] {
        switch self {
        case .singleLabel:
            let m = Double(logits.max() ?? 0)
            let e = logits.map { exp(Double($0) - m) }
            let s = e.reduce(0, +)
            return e.map { Float($0 / s) }
        case .multiLabel:
            return logits.map { Float(1 / (1 + exp(-Double($0)))) }
        }
    }
}
