// BERT input embeddings (word + position + token type), forward and backward.

/// out (B, T, C) = wte[ids[b,t]] + wpe[t] + wtt[types[b,t]], with wte (V, C), wpe (P, C),
/// wtt (S, C) and ids/types (B, T). Positions are 0..<T (HF's default `position_ids`).
/// The caller has validated ids < V, types < S and T ≤ P.
public func embeddingForward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
                             types: UnsafePointer<Int32>, wte: UnsafePointer<Float>,
                             wpe: UnsafePointer<Float>, wtt: UnsafePointer<Float>,
                             batch b: Int, length t: Int, dim c: Int) {
    for bi in 0..<b {
        for ti in 0..<t {
            let row = bi * t + ti
            let o = out + row * c
            let w = wte + Int(ids[row]) * c, p = wpe + ti * c, s = wtt + Int(types[row]) * c
            for i in 0..<c { o[i] = w[i] + p[i] + s[i] }
        }
    }
}

/// Backward of `embeddingForward`: scatter-adds dout (B, T, C) into the rows of dwte,
/// dwpe and dwtt that the forward read. Any of the three may be nil (frozen).
public func embeddingBackward(dwte: UnsafeMutablePointer<Float>?, dwpe: UnsafeMutablePointer<Float>?,
                              dwtt: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                              ids: UnsafePointer<Int32>, types: UnsafePointer<Int32>,
                              batch b: Int, length t: Int, dim c: Int) {
    for bi in 0..<b {
        for ti in 0..<t {
            let row = bi * t + ti
            let d = dout + row * c
            if let dwte { let w = dwte + Int(ids[row]) * c; for i in 0..<c { w[i] += d[i] } }
            if let dwpe { let p = dwpe + ti * c; for i in 0..<c { p[i] += d[i] } }
            if let dwtt { let s = dwtt + Int(types[row]) * c; for i in 0..<c { s[i] += d[i] } }
        }
    }
}
