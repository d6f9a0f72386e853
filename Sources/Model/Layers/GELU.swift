// GELU activation in its exact erf form (HF `hidden_act: "gelu"`), forward and backward.

import Foundation

private let invSqrt2: Float = 0.70710678118654752
private let invSqrt2Pi: Float = 0.39894228040143268

/// out (N) = 0.5 · x · (1 + erf(x/√2)) elementwise.
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n {
        let x = inp[i]
        out[i] = 0.5 * x * (1 + erff(x * invSqrt2))
    }
}

/// dinp (N) += dout · GELU'(x), GELU'(x) = Φ(x) + x·φ(x) with Φ the normal CDF and φ its density.
public func geluBackward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                         dout: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n {
        let x = inp[i]
        let cdf = 0.5 * (1 + erff(x * invSqrt2))
        let pdf = invSqrt2Pi * expf(-0.5 * x * x)
        dinp[i] += dout[i] * (cdf + x * pdf)
    }
}
