// LinearWarmupDecay: the learning-rate schedule — linear warm-up to a peak, then linear decay to zero.

/// `rate(at: s)` is the learning rate for optimizer step s (0-based: s steps already taken),
/// exactly transformers' get_linear_schedule_with_warmup (so fine-tuning can match it step for step):
///   s < W:       peak · s / W                (the first warm-up step runs at rate 0)
///   W ≤ s < N:   peak · (N − s) / (N − W)    (the last step, s = N − 1, gets peak / (N − W))
///   s ≥ N:       0
/// with W = warmupSteps, N = totalSteps. W = 0 means no warm-up; W ≥ N (a run too short to
/// finish warming up) only warms up.
public struct LinearWarmupDecay: Sendable, Equatable {
    public let peak: Float
    public let warmupSteps: Int
    public let totalSteps: Int

    public init(peak: Float, warmupSteps: Int, totalSteps: Int) {
        precondition(warmupSteps >= 0 && totalSteps >= 0,
                     "schedule needs warmupSteps (\(warmupSteps)) ≥ 0 and totalSteps (\(totalSteps)) ≥ 0")
        self.peak = peak
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    public func rate(at step: Int) -> Float {
        if step < 0 || step >= totalSteps { return 0 }
        if step < warmupSteps { return Float(Double(peak) * Double(step) / Double(warmupSteps)) }
        return Float(Double(peak) * Double(totalSteps - step) / Double(totalSteps - warmupSteps))
    }
}
