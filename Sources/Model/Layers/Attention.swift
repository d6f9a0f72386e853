// Multi-head scaled dot-product self-attention with a key padding mask, forward and backward.
// One gemm per (example, head) over strided views of the (B, T, C) projections: head h of
// example b is the T×hs block starting at column h·hs with row stride C, so nothing is copied.

import Foundation
import LinAlg

/// Sizes of one attention call: B examples, T positions, C = H·hs channels, H heads.
public struct AttentionShape: Sendable, Equatable {
    public let batch: Int
    public let length: Int
    public let channels: Int
    public let heads: Int
    public init(batch: Int, length: Int, channels: Int, heads: Int) {
        precondition(channels % heads == 0, "channels \(channels) not divisible by heads \(heads)")
        self.batch = batch; self.length = length; self.channels = channels; self.heads = heads
    }
    public var headSize: Int { channels / heads }
    /// Elements of a (B, H, T, T) probability buffer.
    public var probsCount: Int { batch * heads * length * length }
}

/// out (B, T, C) = softmax(Q Kᵀ/√hs + mask) · V per head, where q, k, v are (B, T, C) and
/// keyMask (B, T) is 1 for real tokens, 0 for padding (padded keys get probability exactly 0,
/// as HF's additive finfo.min mask does). probs (B, H, T, T) keeps the softmax for the backward.
/// With dropout, `dropMask` (B, H, T, T) is applied to the probabilities (HF drops attention
/// probs) and the dropped copy is written to `probsDropped`.
public func attentionForward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             keyMask: UnsafePointer<Int32>, shape s: AttentionShape,
                             dropMask: UnsafePointer<Float>? = nil, probsDropped: UnsafeMutablePointer<Float>? = nil) {
    let (B, T, C, H, hs) = (s.batch, s.length, s.channels, s.heads, s.headSize)
    let scale = Float(1 / Double(hs).squareRoot())
    for b in 0..<B {
        let mask = keyMask + b * T
        for h in 0..<H {
            let p = probs + (b * H + h) * T * T
            let qb = q + b * T * C + h * hs, kb = k + b * T * C + h * hs, vb = v + b * T * C + h * hs
            // p (T, T) = scale · Q_bh (T, hs) · K_bhᵀ
            BLAS.gemm(transA: false, transB: true, m: T, n: T, k: hs, alpha: scale, a: qb, lda: C,
                      b: kb, ldb: C, beta: 0, c: p, ldc: T)
            for i in 0..<T {
                let row = p + i * T
                var maxv = -Float.infinity
                for j in 0..<T where mask[j] != 0 { maxv = max(maxv, row[j]) }
                for j in 0..<T { row[j] -= maxv }
                vectorExp(row, count: T)
                var sum: Float = 0
                for j in 0..<T {
                    if mask[j] != 0 { sum += row[j] } else { row[j] = 0 }
                }
                let inv = sum > 0 ? 1 / sum : 0
                for j in 0..<T { row[j] *= inv }
            }
            var used = UnsafePointer(p)
            if let dropMask, let probsDropped {
                let pd = probsDropped + (b * H + h) * T * T
                dropoutForward(out: pd, inp: p, mask: dropMask + (b * H + h) * T * T, count: T * T)
                used = UnsafePointer(pd)
            }
            // out_bh (T, hs) = P (T, T) · V_bh (T, hs)
            BLAS.gemm(transA: false, transB: false, m: T, n: hs, k: T, alpha: 1, a: used, lda: T,
                      b: vb, ldb: C, beta: 0, c: out + b * T * C + h * hs, ldc: C)
        }
    }
}

/// Backward of `attentionForward`: accumulates dq, dk, dv (B, T, C) from dout (B, T, C).
/// scratch holds T·T floats. In the forward P·V was the output, so dV += Pᵀ·dO and dP = dO·Vᵀ;
/// through the softmax dS = P ⊙ (dP − rowsum(P ⊙ dP)); and S = scale·Q·Kᵀ gives
/// dQ += scale·dS·K, dK += scale·dSᵀ·Q.
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                              v: UnsafePointer<Float>, shape s: AttentionShape, scratch: UnsafeMutablePointer<Float>,
                              dropMask: UnsafePointer<Float>? = nil, probsDropped: UnsafePointer<Float>? = nil) {
    let (B, T, C, H, hs) = (s.batch, s.length, s.channels, s.heads, s.headSize)
    let scale = Float(1 / Double(hs).squareRoot())
    for b in 0..<B {
        for h in 0..<H {
            let off = (b * H + h) * T * T
            let p = probs + off
            let used = probsDropped.map { $0 + off } ?? p
            let head = b * T * C + h * hs
            // dV_bh (T, hs) += P_usedᵀ (T, T) · dO_bh (T, hs)
            BLAS.gemm(transA: true, transB: false, m: T, n: hs, k: T, alpha: 1, a: used, lda: T,
                      b: dout + head, ldb: C, beta: 1, c: dv + head, ldc: C)
            // dP_used (T, T) = dO_bh · V_bhᵀ
            BLAS.gemm(transA: false, transB: true, m: T, n: T, k: hs, alpha: 1, a: dout + head, lda: C,
                      b: v + head, ldb: C, beta: 0, c: scratch, ldc: T)
            if let dropMask {
                let m = dropMask + off
                for i in 0..<(T * T) { scratch[i] *= m[i] }
            }
            for i in 0..<T {
                let pr = p + i * T, dr = scratch + i * T
                var dot: Float = 0
                for j in 0..<T { dot += pr[j] * dr[j] }
                for j in 0..<T { dr[j] = pr[j] * (dr[j] - dot) }
            }
            // dQ_bh += scale · dS · K_bh ; dK_bh += scale · dSᵀ · Q_bh
            BLAS.gemm(transA: false, transB: false, m: T, n: hs, k: T, alpha: scale, a: scratch, lda: T,
                      b: k + head, ldb: C, beta: 1, c: dq + head, ldc: C)
            BLAS.gemm(transA: true, transB: false, m: T, n: hs, k: T, alpha: scale, a: scratch, lda: T,
                      b: q + head, ldb: C, beta: 1, c: dk + head, ldc: C)
        }
    }
}
