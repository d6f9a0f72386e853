// WeightedSum: the running fp64 sum Σ wᵢ θᵢ and Σ wᵢ of one tensor, the streaming form of
// a weighted average.

import LinAlg

final class WeightedSum {
    let shape: [Int]
    private(set) var sum: [Double]
    private(set) var totalWeight = 0.0

    init(shape: [Int]) {
        self.shape = shape
        self.sum = [Double](repeating: 0, count: shape.reduce(1, *))
    }

    /// sum += w · x (x fp32, widened per element).
    func add(_ x: Tensor<Float>, weight w: Double) {
        precondition(x.count == sum.count, "WeightedSum: \(x.shape) vs \(shape)")
        x.withUnsafeBufferPointer { px in
            sum.withUnsafeMutableBufferPointer { ps in
                for i in 0..<ps.count { ps[i] += w * Double(px[i]) }
            }
        }
        totalWeight += w
    }

    /// Σ wθ / Σ w as fp32.
    func average() -> Tensor<Float> { Self.average(sum: sum, totalWeight: totalWeight, shape: shape) }

    /// `sum` / `totalWeight` as fp32 (the secure path has the sum without the terms).
    static func average(sum: [Double], totalWeight: Double, shape: [Int]) -> Tensor<Float> {
        let scale = totalWeight > 0 ? 1 / totalWeight : 0
        var out = TensorKernels.zerosFloat(shape)
        sum.withUnsafeBufferPointer { ps in
            out.withUnsafeMutableBufferPointer { po in
                for i in 0..<po.count { po[i] = Float(ps[i] * scale) }
            }
        }
        return out
    }
}
