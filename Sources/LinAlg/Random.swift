// Seeded randomness for reproducible initialisation, shuffling and tests (SplitMix64).

import Foundation

public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal sample (Box–Muller).
    public mutating func nextNormal() -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

extension Tensor {
    /// Entries drawn i.i.d. from N(0, std²).
    public init(randomNormal shape: [Int], std: Double = 1, using rng: inout SplitMix64) {
        self.init(shape: shape)
        for i in 0..<count { storage[i] = Scalar(rng.nextNormal() * std) }
    }
}

