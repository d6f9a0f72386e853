// Linear layer (HF `nn.Linear` layout): forward and backward over flat row-major buffers.

import LinAlg

/// out (N, OC) = inp (N, C) · weightᵀ + bias, with weight (OC, C) and bias (OC) — the layout
/// of a Hugging Face `*.weight`/`*.bias` pair. `N` is the number of rows (B·T tokens, or B
/// pooled vectors).
public func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          rows n: Int, inDim c: Int, outDim oc: Int) {
    guard n > 0, oc > 0 else { return }
    var beta: Float = 0
    if let bias {
        // Seed every output row with the bias, then let gemm add the product (β = 1).
        for r in 0..<n { (out + r * oc).update(from: bias, count: oc) }
        beta = 1
    }
    BLAS.gemm(transA: false, transB: true, m: n, n: oc, k: c, alpha: 1, a: inp, lda: c,
              b: weight, ldb: c, beta: beta, c: out, ldc: oc)
}

/// Backward of `linearForward`. All gradients are *accumulated* (+=), as in llm.c, so a
/// caller zeroes them once per step and residual branches can add into the same dinp.
/// dout (N, OC) → dinp (N, C) += dout · weight; dweight (OC, C) += doutᵀ · inp; dbias (OC) += Σ_rows dout.
public func linearBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                           dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                           inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           rows n: Int, inDim c: Int, outDim oc: Int) {
    guard n > 0, oc > 0 else { return }
    if let dinp {
        BLAS.gemm(transA: false, transB: false, m: n, n: c, k: oc, alpha: 1, a: dout, lda: oc,
                  b: weight, ldb: c, beta: 1, c: dinp, ldc: c)
    }
    if let dweight {
        BLAS.gemm(transA: true, transB: false, m: oc, n: c, k: n, alpha: 1, a: dout, lda: oc,
                  b: inp, ldb: c, beta: 1, c: dweight, ldc: c)
    }
    if let dbias {
        for r in 0..<n {
            let row = dout + r * oc
            for o in 0..<oc { dbias[o] += row[o] }
        }
    }
}
