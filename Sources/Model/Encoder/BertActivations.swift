// BertActivations: the flat buffers a forward pass fills and the backward reads, sized for the
// largest (B, T) seen and reused across steps. Only a forward that a backward will follow keeps
// every layer's buffers; inference and Gram passes run all layers through one set, so their
// memory is one layer's activations, not numHiddenLayers of them.

final class BertActivations {
    final class Layer {
        // (N, C) with N = B·T
        let q = FloatBuffer(), k = FloatBuffer(), v = FloatBuffer(), ctx = FloatBuffer()
        let attnOut = FloatBuffer(), attnDrop = FloatBuffer(), resid1 = FloatBuffer(), h1 = FloatBuffer()
        let ffnOut = FloatBuffer(), ffnDrop = FloatBuffer(), resid2 = FloatBuffer(), out = FloatBuffer()
        // (N)
        let mean1 = FloatBuffer(), rstd1 = FloatBuffer(), mean2 = FloatBuffer(), rstd2 = FloatBuffer()
        // (N, I)
        let ffnPre = FloatBuffer(), ffnAct = FloatBuffer()
        // (B, H, T, T)
        let probs = FloatBuffer(), probsDropped = FloatBuffer(), probsDrop = FloatBuffer()

        func reserve(n: Int, c: Int, i: Int, probs p: Int, training: Bool) {
            for b in [q, k, v, ctx, attnOut, resid1, h1, ffnOut, resid2, out] { b.reserve(n * c) }
            for b in [mean1, rstd1, mean2, rstd2] { b.reserve(n) }
            for b in [ffnPre, ffnAct] { b.reserve(n * i) }
            probs.reserve(p)
            if training {
                for b in [attnDrop, ffnDrop] { b.reserve(n * c) }
                probsDropped.reserve(p)
                probsDrop.reserve(p)
            }
        }
    }

    var layers: [Layer] = []
    /// Whether the last reserve kept one Layer per encoder layer (a backward follows).
    private(set) var keepsEveryLayer = false
    // Embeddings: sum (N, C), normalised + dropped output (N, C), stats (N), dropout mask (N, C).
    let embSum = FloatBuffer(), embOut = FloatBuffer(), embMean = FloatBuffer(), embRstd = FloatBuffer(), embDrop = FloatBuffer()
    // Head, all (B, C) except logits/probs (B, K).
    let cls = FloatBuffer(), pooledPre = FloatBuffer(), pooled = FloatBuffer(), headDrop = FloatBuffer()
    let headIn = FloatBuffer(), logits = FloatBuffer(), probs = FloatBuffer()
    // Backward scratch: (N, C) ×6, (N, I) ×2, (B, C) ×3, (T, T) per attention worker.
    let dX = FloatBuffer(), dResid = FloatBuffer(), dH1 = FloatBuffer(), dTmp = FloatBuffer()
    let dQ = FloatBuffer(), dK = FloatBuffer(), dV = FloatBuffer(), dCtx = FloatBuffer()
    let dFfnAct = FloatBuffer(), dFfnPre = FloatBuffer()
    let dHeadIn = FloatBuffer(), dHead = FloatBuffer(), dCls = FloatBuffer(), dLogits = FloatBuffer()
    let attnScratch = FloatBuffer()
    // Non-padding rows gathered for statistics hooks: (N, max(C, I)).
    let compact = FloatBuffer()
    // The masked-LM head's own buffers (BertMaskedLM.swift), sized by the selected positions.
    let maskedLM = MaskedLMActivations()

    /// The buffers of encoder layer l in the last forward.
    func layer(_ l: Int) -> Layer { keepsEveryLayer ? layers[l] : layers[0] }

    /// `collecting`: statistics hooks will see compacted rows, which need their own scratch.
    func reserve(layers count: Int, b: Int, t: Int, c: Int, i: Int, heads: Int, labels k: Int, training: Bool, backward: Bool,
                 collecting: Bool) {
        keepsEveryLayer = backward
        let used = backward ? count : min(count, 1)
        while layers.count < used { layers.append(Layer()) }
        let n = b * t
        for l in layers.prefix(used) { l.reserve(n: n, c: c, i: i, probs: b * heads * t * t, training: training) }
        for x in [embSum, embOut] { x.reserve(n * c) }
        for x in [embMean, embRstd] { x.reserve(n) }
        if training { embDrop.reserve(n * c); headDrop.reserve(b * c) }
        for x in [cls, pooledPre, pooled, headIn] { x.reserve(b * c) }
        for x in [logits, probs, dLogits] { x.reserve(b * max(k, 1)) }
        if backward {
            for x in [dX, dResid, dH1, dTmp, dQ, dK, dV, dCtx] { x.reserve(n * c) }
            for x in [dFfnAct, dFfnPre] { x.reserve(n * i) }
            for x in [dHeadIn, dHead, dCls] { x.reserve(b * c) }
            attnScratch.reserve(attentionScratchCount(AttentionShape(batch: b, length: t, channels: c, heads: heads)))
        }
        if collecting { compact.reserve(n * max(c, i)) }
    }
}
