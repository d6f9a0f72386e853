// The BERT backward pass, mirroring BertForward.swift from the classifier down to the
// embeddings. Parameter gradients accumulate (+=) into `parameters.gradients`; the caller zeroes
// them per step. Collectors that want output gradients see them at every linear.

import LinAlg

/// What the classifier is trained against: one class per example, or a B×K 0/1 matrix.
public enum ClassificationTargets: Sendable, Equatable {
    case classes([Int32])
    case multiHot([Float])
}

extension BertEncoder {
    /// Forward (with dropout when `training`), mean loss over the batch, and backward: adds
    /// ∂loss/∂θ into `parameters.gradients`. Returns the loss.
    @discardableResult
    public func lossAndGradients(_ input: EncoderInput, targets: ClassificationTargets, training: Bool = true) throws -> Double {
        guard let k = classifier else { throw EncoderError.noClassifier }
        let (B, K) = (input.batchSize, k.outDim)
        try forward(input, training: training, head: true, backward: true)
        let dLogits = acts.dLogits.pointer
        dLogits.update(repeating: 0, count: B * K)
        let loss: Double
        switch targets {
        case let .classes(labels):
            guard labels.count == B else { throw EncoderError.inputShapeMismatch(what: "labels", expected: B, actual: labels.count) }
            for l in labels where l < 0 || Int(l) >= K { throw EncoderError.labelOutOfRange(label: Int(l), numLabels: K) }
            loss = labels.withUnsafeBufferPointer { y in
                let l = softmaxCrossEntropyForward(probs: acts.probs.pointer, logits: acts.logits.pointer, labels: y.baseAddress!, batch: B, classes: K)
                softmaxCrossEntropyBackward(dlogits: dLogits, probs: acts.probs.pointer, labels: y.baseAddress!, batch: B, classes: K)
                return l
            }
        case let .multiHot(y):
            guard y.count == B * K else { throw EncoderError.inputShapeMismatch(what: "multi-hot labels", expected: B * K, actual: y.count) }
            loss = y.withUnsafeBufferPointer { y in
                let l = sigmoidBCEForward(probs: acts.probs.pointer, logits: acts.logits.pointer, targets: y.baseAddress!, batch: B, classes: K)
                sigmoidBCEBackward(dlogits: dLogits, probs: acts.probs.pointer, targets: y.baseAddress!, batch: B, classes: K)
                return l
            }
        }
        backward(dlogits: dLogits)
        return loss
    }

    /// Backward from dlogits (B, K) of the last forward (which must have run the head).
    /// `weight` is passed to collectors' output-gradient hooks.
    func backward(dlogits: UnsafePointer<Float>, weight: Double = 1) {
        guard let input = current, let k = classifier else { preconditionFailure("backward without a forward through the head") }
        precondition(acts.keepsEveryLayer, "backward after a forward that did not keep its activations (backward: false)")
        let (B, T, C) = (input.batchSize, input.sequenceLength, config.hiddenSize)
        let N = B * T
        let training = currentTraining
        let hooked = collectors.filter(\.needsBackward)

        input.attentionMask.withUnsafeBufferPointer { maskBuf in
            let mask = maskBuf.baseAddress!
            func notify(_ s: LinearSite, _ dout: UnsafePointer<Float>, rows: Int) {
                notifyOutputGradient(hooked, s, dout, rows: rows, mask: mask, weight: weight)
            }

            // classifier: logits (B, K) = headIn·Wᵀ + b  →  dHeadIn (B, C)
            let dHeadIn = acts.dHeadIn.pointer
            dHeadIn.update(repeating: 0, count: B * C)
            notify(k, dlogits, rows: B)
            linearBack(k, dinp: dHeadIn, dout: dlogits, inp: acts.headIn.pointer, rows: B)
            // headIn was pooled·mask: dPooled = dHeadIn·mask
            let dPooled = acts.dHead.pointer
            if training && classifierDropout > 0 {
                dPooled.update(repeating: 0, count: B * C)
                dropoutBackward(dinp: dPooled, dout: dHeadIn, mask: acts.headDrop.pointer, count: B * C)
            } else {
                dPooled.update(from: dHeadIn, count: B * C)
            }
            // pooling → dX (N, C), the gradient w.r.t. the last layer's output
            let dX = acts.dX.pointer
            dX.update(repeating: 0, count: N * C)
            switch config.pooling {
            case .cls:
                // pooled = tanh(pooledPre), pooledPre = cls·Wpᵀ + bp, cls = x[b, 0]
                let dPre = acts.dCls.pointer
                dPre.update(repeating: 0, count: B * C)
                tanhBackward(dinp: dPre, out: acts.pooled.pointer, dout: dPooled, count: B * C)
                notify(pooler, dPre, rows: B)
                let dCls = acts.dHeadIn.pointer // dHeadIn is no longer needed
                dCls.update(repeating: 0, count: B * C)
                linearBack(pooler, dinp: dCls, dout: dPre, inp: acts.cls.pointer, rows: B)
                for b in 0..<B { (dX + b * T * C).update(from: dCls + b * C, count: C) }
            case .mean:
                for b in 0..<B {
                    let n = Float(max(input.length(of: b), 1))
                    for t in 0..<T where mask[b * T + t] != 0 {
                        let row = dX + (b * T + t) * C, d = dPooled + b * C
                        for c in 0..<C { row[c] = d[c] / n }
                    }
                }
            }
        }
        encoderBackward(weight: weight)
    }

    /// Backward through the encoder layers and the embeddings, from acts.dX = ∂loss/∂(last
    /// layer output) (N, C) of the last forward, which the head's backward has filled.
    func encoderBackward(weight: Double = 1) {
        guard let input = current else { preconditionFailure("backward without a forward") }
        precondition(acts.keepsEveryLayer, "backward after a forward that did not keep its activations (backward: false)")
        let (B, T, C, I, H) = (input.batchSize, input.sequenceLength, config.hiddenSize, config.intermediateSize, config.numAttentionHeads)
        let N = B * T
        let training = currentTraining
        let pHidden = training ? config.hiddenDropoutProb : 0
        let pAttn = training ? config.attentionProbsDropoutProb : 0
        let shape = AttentionShape(batch: B, length: T, channels: C, heads: H)
        let hooked = collectors.filter(\.needsBackward)
        let dX = acts.dX.pointer

        input.attentionMask.withUnsafeBufferPointer { maskBuf in
            let mask = maskBuf.baseAddress!
            func notify(_ s: LinearSite, _ dout: UnsafePointer<Float>, rows: Int) {
                notifyOutputGradient(hooked, s, dout, rows: rows, mask: mask, weight: weight)
            }

            // layers, last to first; dX holds ∂loss/∂(layer output) and ends as ∂loss/∂(layer input)
            for (l, s) in layers.enumerated().reversed() {
                let a = acts.layer(l)
                let xIn = l == 0 ? acts.embOut.pointer : acts.layer(l - 1).out.pointer
                let dResid = acts.dResid.pointer, dH1 = acts.dH1.pointer, dTmp = acts.dTmp.pointer
                // out = LN(resid2)
                dResid.update(repeating: 0, count: N * C)
                layerNormBackward(dinp: dResid, dweight: G + s.ln2Weight, dbias: G + s.ln2Bias, dout: dX, inp: a.resid2.pointer,
                                  weight: P + s.ln2Weight, mean: a.mean2.pointer, rstd: a.rstd2.pointer, rows: N, dim: C)
                // resid2 = ffnOut·mask + h1
                dH1.update(from: dResid, count: N * C)
                dropThrough(dTmp, dResid, pHidden > 0 ? a.ffnDrop : nil, count: N * C)
                // ffnOut = ffnAct·W2ᵀ + b2
                notify(s.output, dTmp, rows: N)
                acts.dFfnAct.zero(N * I)
                linearBack(s.output, dinp: acts.dFfnAct.pointer, dout: dTmp, inp: a.ffnAct.pointer, rows: N)
                // ffnAct = GELU(ffnPre)
                acts.dFfnPre.zero(N * I)
                geluBackward(dinp: acts.dFfnPre.pointer, inp: a.ffnPre.pointer, dout: acts.dFfnAct.pointer, count: N * I)
                // ffnPre = h1·W1ᵀ + b1
                notify(s.intermediate, acts.dFfnPre.pointer, rows: N)
                linearBack(s.intermediate, dinp: dH1, dout: acts.dFfnPre.pointer, inp: a.h1.pointer, rows: N)
                // h1 = LN(resid1)
                dResid.update(repeating: 0, count: N * C)
                layerNormBackward(dinp: dResid, dweight: G + s.ln1Weight, dbias: G + s.ln1Bias, dout: dH1, inp: a.resid1.pointer,
                                  weight: P + s.ln1Weight, mean: a.mean1.pointer, rstd: a.rstd1.pointer, rows: N, dim: C)
                // resid1 = attnOut·mask + x: the skip path gives dX directly
                dX.update(from: dResid, count: N * C)
                dropThrough(dTmp, dResid, pHidden > 0 ? a.attnDrop : nil, count: N * C)
                // attnOut = ctx·Woᵀ + bo
                notify(s.attentionOutput, dTmp, rows: N)
                acts.dCtx.zero(N * C)
                linearBack(s.attentionOutput, dinp: acts.dCtx.pointer, dout: dTmp, inp: a.ctx.pointer, rows: N)
                // ctx = attention(q, k, v)
                acts.dQ.zero(N * C); acts.dK.zero(N * C); acts.dV.zero(N * C)
                attentionBackward(dq: acts.dQ.pointer, dk: acts.dK.pointer, dv: acts.dV.pointer, dout: acts.dCtx.pointer,
                                  probs: a.probs.pointer, q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, keyMask: mask, shape: shape,
                                  scratch: acts.attnScratch.pointer,
                                  dropMask: pAttn > 0 ? UnsafePointer(a.probsDrop.pointer) : nil,
                                  probsDropped: pAttn > 0 ? UnsafePointer(a.probsDropped.pointer) : nil)
                // q, k, v = x·Wᵀ + b: all three add into dX
                for (site, d) in [(s.query, acts.dQ), (s.key, acts.dK), (s.value, acts.dV)] {
                    notify(site, d.pointer, rows: N)
                    linearBack(site, dinp: dX, dout: d.pointer, inp: xIn, rows: N)
                }
            }

            // embeddings: embOut = LN(embSum)·mask
            let dEmb = acts.dTmp.pointer, dSum = acts.dResid.pointer
            dropThrough(dEmb, dX, pHidden > 0 ? acts.embDrop : nil, count: N * C)
            dSum.update(repeating: 0, count: N * C)
            layerNormBackward(dinp: dSum, dweight: G + embLNWeight, dbias: G + embLNBias, dout: dEmb, inp: acts.embSum.pointer,
                              weight: P + embLNWeight, mean: acts.embMean.pointer, rstd: acts.embRstd.pointer, rows: N, dim: C)
            input.inputIDs.withUnsafeBufferPointer { ids in
                input.tokenTypeIDs.withUnsafeBufferPointer { types in
                    embeddingBackward(dwte: G + wte, dwpe: G + wpe, dwtt: G + wtt, dout: dSum, ids: ids.baseAddress!,
                                      types: types.baseAddress!, batch: B, length: T, dim: C)
                }
            }
        }
    }

    /// Hands ∂loss/∂(output) of linear `s` — its non-padding rows, or every row of a per-example
    /// linear — to the collectors that hook the backward.
    private func notifyOutputGradient(_ hooked: [any StatisticsCollector], _ s: LinearSite, _ dout: UnsafePointer<Float>,
                                      rows: Int, mask: UnsafePointer<Int32>, weight: Double) {
        guard !hooked.isEmpty else { return }
        let (r, n) = s.perExample ? (dout, rows) : compactRows(dout, dim: s.outDim, mask: mask, rows: rows)
        for c in hooked { c.observeOutputGradient(of: s, rows: r, count: n, weight: weight) }
    }

    /// dst = src·mask (dropout in the forward) or a copy of src.
    private func dropThrough(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ drop: FloatBuffer?, count n: Int) {
        if let drop {
            let m = drop.pointer
            for i in 0..<n { dst[i] = src[i] * m[i] }
        } else {
            dst.update(from: src, count: n)
        }
    }

    @inline(__always)
    func linearBack(_ s: LinearSite, dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                            inp: UnsafePointer<Float>, rows: Int) {
        linearBackward(dinp: dinp, dweight: G + s.weightOffset, dbias: G + s.biasOffset, dout: dout, inp: inp,
                       weight: P + s.weightOffset, rows: rows, inDim: s.inDim, outDim: s.outDim)
    }
}
