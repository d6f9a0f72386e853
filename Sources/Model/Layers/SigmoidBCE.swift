// Sigmoid binary cross-entropy for multi-label classification (HF `multi_label_classification`,
// i.e. `BCEWithLogitsLoss` with its default mean over all B·K entries).

import Foundation

/// probs (B, K) = σ(logits); returns mean over B·K of −[y log σ(z) + (1−y) log(1−σ(z))] with
/// targets (B, K) in [0, 1]. Uses max(z,0) − z·y + log(1 + e^{−|z|}) so large |z| does not overflow.
@discardableResult
public func sigmoidBCEForward(probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                              targets: UnsafePointer<Float>, batch b: Int, classes k: Int) -> Double {
    let n = b * k
    var loss = 0.0
    for i in 0..<n {
        let z = Double(logits[i]), y = Double(targets[i])
        loss += max(z, 0) - z * y + log1p(exp(-abs(z)))
        probs[i] = Float(1 / (1 + exp(-z)))
    }
    return n > 0 ? loss / Double(n) : 0
}

/// dlogits (B, K) += dloss · (σ(z) − y) / (B·K).
public func sigmoidBCEBackward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
                               targets: UnsafePointer<Float>, batch b: Int, classes k: Int, dloss: Float = 1) {
    let n = b * k
    let s = dloss / Float(n)
    for i in 0..<n { dlogits[i] += s * (probs[i] - targets[i]) }
}
