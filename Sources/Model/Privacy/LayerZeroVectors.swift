// LayerZeroVectors: v(w, t) = LN(E[w] + P[t] + T[0]), the input row that token w at position t
// feeds to layer 0's query/key/value — computable by anyone holding the model. The same
// embedding sum order and the same LayerNorm kernel as the forward, so the vectors are the
// forward's rows bit for bit.

import LinAlg

public struct LayerZeroVectors {
    public let model: BertEncoder
    public var dim: Int { model.config.hiddenSize }
    public var vocabularySize: Int { model.config.vocabSize }
    public var maxPositions: Int { model.config.maxPositionEmbeddings }

    public init(model: BertEncoder) { self.model = model }

    /// Rows (ids.count × C) v(w, position) for w in `ids`.
    public func vectors(ids: [Int32], position t: Int) -> [Float] {
        var out = [Float](repeating: 0, count: ids.count * dim)
        out.withUnsafeMutableBufferPointer { write(ids: ids, position: t, into: $0.baseAddress!) }
        return out
    }

    /// v(w, t) for every w of the vocabulary (V × C).
    public func allTokens(position t: Int) -> [Float] {
        vectors(ids: (0..<Int32(vocabularySize)).map { $0 }, position: t)
    }

    /// Writes v(w, t) for w in `ids` into `out` (ids.count × C); the LayerNorm runs in place.
    public func write(ids: [Int32], position t: Int, into out: UnsafeMutablePointer<Float>) {
        let C = dim
        let p = model.parameters
        let wte = p.value("embeddings.word_embeddings.weight"), wpe = p.value("embeddings.position_embeddings.weight") + t * C
        let wtt = p.value("embeddings.token_type_embeddings.weight")
        for (r, id) in ids.enumerated() {
            let w = wte + Int(id) * C, o = out + r * C
            for i in 0..<C { o[i] = w[i] + wpe[i] + wtt[i] }
        }
        var mean = [Float](repeating: 0, count: ids.count), rstd = mean
        layerNormForward(out: out, mean: &mean, rstd: &rstd, inp: out, weight: p.value("embeddings.LayerNorm.weight"),
                         bias: p.value("embeddings.LayerNorm.bias"), rows: ids.count, dim: C, eps: model.config.layerNormEps)
    }
}
