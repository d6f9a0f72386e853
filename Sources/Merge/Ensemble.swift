// Ensembling (not a merge): the average of K models' logits, the upper reference the
// experiment compares merges with.

import LinAlg

public enum Ensemble {
    /// Elementwise mean of `logits` (each e.g. examples×labels); shapes must agree.
    public static func averageLogits(_ logits: [Tensor<Float>]) throws -> Tensor<Float> {
        guard let first = logits.first else { throw MergeError.noModels(method: "ensemble") }
        var sum = [Double](repeating: 0, count: first.count)
        for (i, t) in logits.enumerated() {
            guard t.shape == first.shape else {
                throw MergeError.shapeMismatch(model: "model\(i)", tensor: "logits", expected: first.shape, actual: t.shape)
            }
            t.withUnsafeBufferPointer { p in for j in 0..<sum.count { sum[j] += Double(p[j]) } }
        }
        let k = Double(logits.count)
        return try Tensor(shape: first.shape, storage: sum.map { Float($0 / k) })
    }
}
