// AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019) over flat Float parameter buffers.
//
// One step, for each parameter tensor θ with gradient g (t = steps taken, counting this one;
// γ = learning rate, λ = weight decay, applied only where the decay mask is true):
//   θ ← θ · (1 − γλ)
//   m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
//   θ ← θ − (γ / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
// This is torch.optim.AdamW's documented algorithm in the arrangement its implementation
// uses (ε added after the bias-corrected square root). Moments are Float; the per-step
// scalars are computed in Double.

import Foundation  // pow

public struct AdamWConfig: Sendable, Equatable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// Holds the first and second moments for a fixed list of parameter tensors (sizes given
/// at init; the same order must be used at every step).
public final class AdamW {
    public let config: AdamWConfig
    public let parameterSizes: [Int]
    /// Optimizer steps taken so far.
    public private(set) var stepCount = 0
    private let firstMoments: [UnsafeMutableBufferPointer<Float>]
    private let secondMoments: [UnsafeMutableBufferPointer<Float>]

    public init(config: AdamWConfig, parameterSizes: [Int]) {
        precondition(parameterSizes.allSatisfy { $0 >= 0 }, "negative parameter size in \(parameterSizes)")
        self.config = config
        self.parameterSizes = parameterSizes
        func zeros(_ n: Int) -> UnsafeMutableBufferPointer<Float> {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
            buffer.initialize(repeating: 0)
            return buffer
        }
        firstMoments = parameterSizes.map(zeros)
        secondMoments = parameterSizes.map(zeros)
    }

    deinit {
        for buffer in firstMoments { buffer.deallocate() }
        for buffer in secondMoments { buffer.deallocate() }
    }

    /// The first moment of parameter `index` (a copy; for tests and checkpoints).
    public func firstMoment(_ index: Int) -> [Float] { Array(firstMoments[index]) }
    /// The second moment of parameter `index` (a copy).
    public func secondMoment(_ index: Int) -> [Float] { Array(secondMoments[index]) }

    /// One update of every parameter in place. `learningRate` overrides the config's (the
    /// schedule's value for this step); `decayMask[i]` says whether tensor i is decayed
    /// (by convention biases and LayerNorm weights are not).
    public func step(parameters: [UnsafeMutableBufferPointer<Float>], gradients: [UnsafeBufferPointer<Float>],
                     learningRate: Float, decayMask: [Bool]) {
        precondition(parameters.count == parameterSizes.count && gradients.count == parameterSizes.count
                     && decayMask.count == parameterSizes.count,
                     "AdamW.step: \(parameters.count) parameters, \(gradients.count) gradients, \(decayMask.count) mask entries; expected \(parameterSizes.count)")
        stepCount += 1
        let t = Double(stepCount)
        let lr = Double(learningRate)
        let beta1 = config.beta1, beta2 = config.beta2, epsilon = config.epsilon
        let oneMinusBeta1 = 1 - beta1, oneMinusBeta2 = 1 - beta2
        let stepSize = Float(lr / (1 - pow(Double(beta1), t)))
        let inverseBiasCorrection2Sqrt = Float(1 / (1 - pow(Double(beta2), t)).squareRoot())
        let decayFactor = Float(1 - lr * Double(config.weightDecay))

        for index in parameterSizes.indices {
            let n = parameterSizes[index]
            let theta = parameters[index], grad = gradients[index]
            precondition(theta.count == n && grad.count == n,
                         "AdamW.step: parameter \(index) has \(theta.count) values and \(grad.count) gradients; expected \(n)")
            let m = firstMoments[index], v = secondMoments[index]
            let decay = decayMask[index] ? decayFactor : 1
            for i in 0..<n {
                let g = grad[i]
                let mi = beta1 * m[i] + oneMinusBeta1 * g
                let vi = beta2 * v[i] + oneMinusBeta2 * g * g
                m[i] = mi
                v[i] = vi
                let denominator = vi.squareRoot() * inverseBiasCorrection2Sqrt + epsilon
                theta[i] = theta[i] * decay - stepSize * mi / denominator
            }
        }
    }
}

