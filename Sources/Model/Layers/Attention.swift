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
    forEachHead(batch: B, heads: H) { b, h, _ in
        let mask = keyMask + b * T
        // Right-padded rows (mask 1…1 0…0) only need the first L key columns: the scores,
        // softmax and P·V shrink to T×L; any other mask takes the general path over all T.
        let prefix = keyPrefixLength(mask, T)
        let L = prefix ?? T
        do {
            let p = probs + (b * H + h) * T * T
            let qb = q + b * T * C + h * hs, kb = k + b * T * C + h * hs, vb = v + b * T * C + h * hs
            // p (T, L) = scale · Q_bh (T, hs) · K_bh[0..<L]ᵀ
            BLAS.gemm(transA: false, transB: true, m: T, n: L, k: hs, alpha: scale, a: qb, lda: C,
                      b: kb, ldb: C, beta: 0, c: p, ldc: T)
            for i in 0..<T { maskedSoftmax(p + i * T, mask: mask, length: T, prefix: prefix) }
            var used = UnsafePointer(p)
            if let dropMask, let probsDropped {
                let pd = probsDropped + (b * H + h) * T * T
                dropoutForward(out: pd, inp: p, mask: dropMask + (b * H + h) * T * T, count: T * T)
                used = UnsafePointer(pd)
            }
            // out_bh (T, hs) = P (T, L) · V_bh[0..<L] (L, hs)
            BLAS.gemm(transA: false, transB: false, m: T, n: hs, k: L, alpha: 1, a: used, lda: T,
                      b: vb, ldb: C, beta: 0, c: out + b * T * C + h * hs, ldc: C)
        }
    }
}

/// The first position's row of `attentionForward`'s output for each example: out (B, C) =
/// softmax(q_b Kᵀ/√hs + mask) · V per head, where q (B, C) holds each example's query at
/// position 0 and k, v are the full (B, T, C) projections. What a classifier reading only the
/// [CLS] position needs from the last layer; probs holds B·H·T floats of scratch.
public func clsAttentionForward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                                q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                keyMask: UnsafePointer<Int32>, shape s: AttentionShape) {
    let (B, T, C, H, hs) = (s.batch, s.length, s.channels, s.heads, s.headSize)
    let scale = Float(1 / Double(hs).squareRoot())
    forEachHead(batch: B, heads: H) { b, h, _ in
        let mask = keyMask + b * T
        let prefix = keyPrefixLength(mask, T)
        let L = prefix ?? T
        let row = probs + (b * H + h) * T
        let qb = q + b * C + h * hs, kb = k + b * T * C + h * hs, vb = v + b * T * C + h * hs
        // row (1, L) = scale · q_bh (1, hs) · K_bh[0..<L]ᵀ, then the same softmax as attentionForward's
        BLAS.gemm(transA: false, transB: true, m: 1, n: L, k: hs, alpha: scale, a: qb, lda: C,
                  b: kb, ldb: C, beta: 0, c: row, ldc: T)
        maskedSoftmax(row, mask: mask, length: T, prefix: prefix)
        // out_bh (1, hs) = row (1, L) · V_bh[0..<L] (L, hs)
        BLAS.gemm(transA: false, transB: false, m: 1, n: hs, k: L, alpha: 1, a: row, lda: T,
                  b: vb, ldb: C, beta: 0, c: out + b * C + h * hs, ldc: C)
    }
}

/// Floats of scratch `attentionBackward` needs: one T×T block per worker thread.
public func attentionScratchCount(_ s: AttentionShape) -> Int { attentionWorkers * s.length * s.length }

/// Worker threads for the per-head loops: the BLAS thread count (2 on the target machine).
var attentionWorkers: Int { max(1, BLAS.threads) }

/// Runs body(b, h, worker) for every (example, head). The per-head matmuls are small
/// (T×T×hs), where OpenBLAS's own threading mostly waits; instead the heads are split over
/// `attentionWorkers` threads, each calling single-threaded BLAS, and the thread count is
/// restored afterwards.
func forEachHead(batch B: Int, heads H: Int, _ body: @escaping (Int, Int, Int) -> Void) {
    let workers = min(attentionWorkers, B * H)
    guard workers > 1 else {
        for b in 0..<B { for h in 0..<H { body(b, h, 0) } }
        return
    }
    // Each (example, head) touches a disjoint block.
    BLAS.concurrentPerform(iterations: workers) { w in
        for i in stride(from: w, to: B * H, by: workers) { body(i / H, i % H, w) }
    }
}

/// One row of attention scores (T) → probabilities in place. With a right-padding prefix of L
/// keys only row[0..<L] is read and the rest set to 0; any other mask gives masked keys
/// probability exactly 0 (a row with no key left is all 0).
@inline(__always)
func maskedSoftmax(_ row: UnsafeMutablePointer<Float>, mask: UnsafePointer<Int32>, length T: Int, prefix: Int?) {
    var maxv = -Float.infinity
    if let L = prefix {
        // Spelled out in lanes: through vectorMap each group of four was a closure call, and
        // the scalar maximum a chain of dependent compares: 1 % of a Gram pass, same bits.
        let lanes = FloatLanes.scalarCount
        var i = 0
        var m = FloatLanes(repeating: -.infinity)
        while i + lanes <= L {
            let v = UnsafeRawPointer(row + i).loadUnaligned(as: FloatLanes.self)
            m.replace(with: v, where: v .> m)
            i += lanes
        }
        maxv = m.max()
        while i < L { maxv = max(maxv, row[i]); i += 1 }
        let shift = FloatLanes(repeating: maxv)
        var total = FloatLanes(repeating: 0)
        i = 0
        while i + lanes <= L {
            let e = simdExp(UnsafeRawPointer(row + i).loadUnaligned(as: FloatLanes.self) - shift)
            UnsafeMutableRawPointer(row + i).storeBytes(of: e, as: FloatLanes.self)
            total += e
            i += lanes
        }
        var sum = total.sum()
        if i < L {
            let k = L - i
            let e = simdExp(loadPartial(row + i, k) - shift)
            storePartial(e, row + i, k)
            for j in 0..<k { sum += e[j] }
        }
        let inv = 1 / sum
        for j in 0..<L { row[j] *= inv }
        (row + L).update(repeating: 0, count: T - L)
    } else {
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
}

/// L when mask (T) is L ones followed by T − L zeros (right padding), else nil.
@inline(__always)
func keyPrefixLength(_ mask: UnsafePointer<Int32>, _ t: Int) -> Int? {
    var l = 0
    while l < t && mask[l] != 0 { l += 1 }
    for j in l..<t where mask[j] != 0 { return nil }
    return l
}

/// Backward of `attentionForward`: accumulates dq, dk, dv (B, T, C) from dout (B, T, C).
/// scratch holds `attentionScratchCount(shape)` floats (T·T per worker thread). In the forward P·V was the output, so dV += Pᵀ·dO and dP = dO·Vᵀ;
/// through the softmax dS = P ⊙ (dP − rowsum(P ⊙ dP)); and S = scale·Q·Kᵀ gives
/// dQ += scale·dS·K, dK += scale·dSᵀ·Q.
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                              dv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                              v: UnsafePointer<Float>, keyMask: UnsafePointer<Int32>, shape s: AttentionShape,
                              scratch: UnsafeMutablePointer<Float>,
                              dropMask: UnsafePointer<Float>? = nil, probsDropped: UnsafePointer<Float>? = nil) {
    let (B, T, C, H, hs) = (s.batch, s.length, s.channels, s.heads, s.headSize)
    let scale = Float(1 / Double(hs).squareRoot())
    forEachHead(batch: B, heads: H) { b, h, worker in
        // Columns ≥ L of P are exactly 0 (padded keys), so every product stops at L.
        let L = keyPrefixLength(keyMask + b * T, T) ?? T
        let scratch = scratch + worker * T * T
        do {
            let off = (b * H + h) * T * T
            let p = probs + off
            let used = probsDropped.map { $0 + off } ?? p
            let head = b * T * C + h * hs
            // dV_bh[0..<L] (L, hs) += P_used[:, 0..<L]ᵀ · dO_bh (T, hs)
            BLAS.gemm(transA: true, transB: false, m: L, n: hs, k: T, alpha: 1, a: used, lda: T,
                      b: dout + head, ldb: C, beta: 1, c: dv + head, ldc: C)
            // dP_used (T, L) = dO_bh · V_bh[0..<L]ᵀ
            BLAS.gemm(transA: false, transB: true, m: T, n: L, k: hs, alpha: 1, a: dout + head, lda: C,
                      b: v + head, ldb: C, beta: 0, c: scratch, ldc: T)
            if let dropMask {
                let m = dropMask + off
                for i in 0..<T { for j in 0..<L { scratch[i * T + j] *= m[i * T + j] } }
            }
            for i in 0..<T {
                let pr = p + i * T, dr = scratch + i * T
                var dot: Float = 0
                for j in 0..<L { dot += pr[j] * dr[j] }
                for j in 0..<L { dr[j] = pr[j] * (dr[j] - dot) }
            }
            // dQ_bh += scale · dS (T, L) · K_bh[0..<L] ; dK_bh[0..<L] += scale · dSᵀ · Q_bh
            BLAS.gemm(transA: false, transB: false, m: T, n: hs, k: L, alpha: scale, a: scratch, lda: T,
                      b: k + head, ldb: C, beta: 1, c: dq + head, ldc: C)
            BLAS.gemm(transA: true, transB: false, m: L, n: hs, k: T, alpha: scale, a: scratch, lda: T,
                      b: q + head, ldb: C, beta: 1, c: dk + head, ldc: C)
        }
    }
}
