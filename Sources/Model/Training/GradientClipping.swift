// GradientClipping: scale all gradients together so their global L2 norm is at most a bound.

import LinAlg

/// Computes the L2 norm of all gradients taken as one vector (summed in Double) and, when it
/// exceeds `maxNorm`, scales every gradient by maxNorm / (norm + 1e-6) — the same rule as
/// torch.nn.utils.clip_grad_norm_, whose 1e-6 keeps the division safe. Returns the norm
/// before clipping (for logging, and to detect non-finite gradients).
@discardableResult
public func clipGradientNorm(_ gradients: [UnsafeMutableBufferPointer<Float>], maxNorm: Float) -> Double {
    var sumOfSquares = 0.0
    for buffer in gradients {
        var partial = 0.0
        for value in buffer { partial += Double(value) * Double(value) }
        sumOfSquares += partial
    }
    let norm = sumOfSquares.squareRoot()
    let coefficient = Double(maxNorm) / (norm + 1e-6)
    if coefficient < 1 {
        for buffer in gradients where buffer.count > 0 {
            BLAS.scal(n: buffer.count, alpha: Float(coefficient), x: buffer.baseAddress!)
        }
    }
    return norm
}
