// Softmax cross-entropy for single-label classification (HF `single_label_classification`).

import Foundation

/// probs (B, K) = softmax(logits (B, K)); returns the mean over the batch of −log p(label).
/// labels (B) are class indices in 0..<K (validated by the caller).
@discardableResult
public func softmaxCrossEntropyForward(probs: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                       labels: UnsafePointer<Int32>, batch b: Int, classes k: Int) -> Double {
    var loss = 0.0
    for r in 0..<b {
        let z = logits + r * k, p = probs + r * k
        var maxv = -Float.infinity
        for j in 0..<k { maxv = max(maxv, z[j]) }
        var sum = 0.0
        for j in 0..<k { let e = exp(Double(z[j] - maxv)); p[j] = Float(e); sum += e }
        for j in 0..<k { p[j] = Float(Double(p[j]) / sum) }
        // −log p_y = log Σ exp(z − max) − (z_y − max), computed without taking log of a rounded p.
        loss += log(sum) - Double(z[Int(labels[r])] - maxv)
    }
    return b > 0 ? loss / Double(b) : 0
}

/// dlogits (B, K) += dloss · (probs − onehot(label)) / B: the gradient of the mean loss.
public func softmaxCrossEntropyBackward(dlogits: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
                                        labels: UnsafePointer<Int32>, batch b: Int, classes k: Int, dloss: Float = 1) {
    let s = dloss / Float(b)
    for r in 0..<b {
        let p = probs + r * k, d = dlogits + r * k
        for j in 0..<k { d[j] += s * p[j] }
        d[Int(labels[r])] -= s
    }
}
