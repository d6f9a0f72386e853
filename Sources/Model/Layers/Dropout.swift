// Inverted dropout (training only), forward and backward; the mask is drawn from a seeded RNG.

import LinAlg

/// Draws mask (N): each entry 0 with probability p, else 1/(1−p), so E[mask] = 1.
public func dropoutMask(_ mask: UnsafeMutablePointer<Float>, count n: Int, p: Float, rng: inout SplitMix64) {
    let keep = 1 / (1 - p)
    // Compare 24 random bits against p·2²⁴: one RNG draw per element, no Double conversions.
    let threshold = UInt64(Double(p) * Double(1 << 24))
    for i in 0..<n { mask[i] = (rng.next() >> 40) < threshold ? 0 : keep }
}

/// out (N) = inp · mask. In-place use (out == inp) is allowed.
public func dropoutForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                           mask: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { out[i] = inp[i] * mask[i] }
}

/// dinp (N) += dout · mask.
public func dropoutBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                            mask: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { dinp[i] += dout[i] * mask[i] }
}
