// tanh activation (the BERT pooler's), forward and backward.

import Foundation

/// out (N) = tanh(inp) elementwise.
public func tanhForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { out[i] = tanhf(inp[i]) }
}

/// dinp (N) += dout · (1 − out²), using the forward's *output*.
public func tanhBackward(dinp: UnsafeMutablePointer<Float>, out: UnsafePointer<Float>,
                         dout: UnsafePointer<Float>, count n: Int) {
    for i in 0..<n { dinp[i] += dout[i] * (1 - out[i] * out[i]) }
}
