// GramNoise: the Gaussian mechanism on the Grams an agent shares. Rows were already clipped
// during collection (GramCollector's `clip`), which bounds what one example can add; this file
// adds the noise to the collected sums, projects each noisy Gram back to positive
// semi-definite, and writes the accounting into the statistics' metadata.
//
// Why noise the sums and not the batches: the Gaussian mechanism's guarantee is about the
// released value; noise per batch would be released once per Gram anyway and only add variance.
// Clipping cannot be a post-processing step (it must bound each row before it is summed), so it
// lives in the collector and the noise here.
//
// Privacy unit: one example of the Gram sample (the ≤ gram_batches × batch_size examples the
// no-grad pass reads), add/remove adjacency. With every row clipped to ‖x‖ ≤ C√d and at most L
// (= max_len) token rows per example, one example changes a token-level Gram by
// ‖Σₜ xₜxₜᵀ‖_F ≤ Σₜ‖xₜ‖² ≤ L·C²·d, a pooled (pooler, classifier) Gram by C²·d, the token count
// by L and the example count by 1. The noise is N(0, σ²) on every upper-triangle entry
// (diagonal included), mirrored, so the upper triangle is the released vector and its L2
// sensitivity is at most the Frobenius bound above.

import Foundation
import LinAlg

/// An agent's `privacy: {gram_noise: {epsilon, delta, clip}}`.
public struct GramNoiseSettings: Sendable, Equatable, Codable {
    public var epsilon: Double
    public var delta: Double
    /// Row bound as a root-mean-square per input coordinate: every row is scaled to ‖x‖ ≤ clip·√d_in,
    /// so one number suits linears of different widths (LayerNorm outputs have RMS ≈ 1).
    public var clip: Double
    /// Seed of the noise (experiments and tests only; nil draws from the system's generator).
    public var seed: UInt64?

    public init(epsilon: Double, delta: Double, clip: Double, seed: UInt64? = nil) {
        self.epsilon = epsilon; self.delta = delta; self.clip = clip; self.seed = seed
    }

    /// The row-norm bound of a linear whose input has `inDim` coordinates.
    public func rowBound(inDim: Int) -> Float { Float(clip * Double(inDim).squareRoot()) }
}

/// What was released and at which noise, written to `gram.privacy` in stats.safetensors.
public struct GramNoiseAccounting: Sendable, Equatable, Codable {
    public var epsilon: Double
    public var delta: Double
    public var clip: Double
    public var unit: String
    /// L: token rows one example can contribute (the statistics pass's max_len).
    public var maxRowsPerExample: Int
    /// Gaussian mechanisms composed: every stored Gram plus the token and example counts.
    public var mechanisms: Int
    public var rho: Double
    /// s: σ = s·Δ for every mechanism.
    public var noiseMultiplier: Double
    /// σ per stored Gram (its saved linear name).
    public var gramStd: [String: Double]
    /// The most negative eigenvalue the PSD projection removed, per Gram, relative to max(diag).
    public var projectedNegativeRelative: [String: Double]
}

public enum GramNoise {
    /// A standard normal from any generator (Box–Muller).
    static func normal<R: RandomNumberGenerator>(_ rng: inout R) -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &rng)
        let u2 = Double.random(in: 0..<1, using: &rng)
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// g (d×d, symmetric) + Z with Z symmetric, Z_ij = Z_ji ~ N(0, σ²) for i ≤ j; fp64.
    public static func addSymmetricNoise<R: RandomNumberGenerator>(_ g: Tensor<Float>, std: Double, using rng: inout R) -> Tensor<Double> {
        let d = g.shape[0]
        var out = g.converted(to: Double.self)
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<d {
                for j in i..<d {
                    let z = std * normal(&rng)
                    p[i * d + j] += z
                    if j != i { p[j * d + i] = p[i * d + j] }
                }
            }
        }
        return out
    }

    /// Noises the Grams and row counts among `tensors`/`metadata` (as GramCollector exports them,
    /// with saved names) in place, projects each Gram to PSD, and returns the accounting.
    /// `perExampleLinears` are the saved names of linears fed one pooled row per example.
    public static func privatize(tensors: inout [(name: String, tensor: Tensor<Float>)], metadata: inout [String: String],
                                 perExampleLinears: Set<String>, settings: GramNoiseSettings,
                                 maxRowsPerExample: Int) throws -> GramNoiseAccounting {
        var system = SystemRandomNumberGenerator()
        var seeded = SplitMix64(seed: settings.seed ?? 0)
        func draw() -> Double { settings.seed == nil ? normal(&system) : normal(&seeded) }

        let gramIndices = tensors.indices.filter { tensors[$0].name.hasSuffix(".gram") }
        let mechanisms = gramIndices.count + 2
        let s = PrivacyAccountant.noiseMultiplier(epsilon: settings.epsilon, delta: settings.delta, mechanisms: mechanisms)
        let L = Double(maxRowsPerExample)
        var gramStd: [String: Double] = [:], negative: [String: Double] = [:]
        for i in gramIndices {
            let linear = String(tensors[i].name.dropLast(".gram".count))
            let d = tensors[i].tensor.shape[0]
            let boundSquared = settings.clip * settings.clip * Double(d)          // (C√d)²
            let sensitivity = (perExampleLinears.contains(linear) ? 1 : L) * boundSquared
            let std = s * sensitivity
            var noisy: Tensor<Double>
            if settings.seed == nil {
                noisy = addSymmetricNoise(tensors[i].tensor, std: std, using: &system)
            } else {
                noisy = addSymmetricNoise(tensors[i].tensor, std: std, using: &seeded)
            }
            let projection = try PositiveSemidefinite.nearest(noisy)
            noisy = projection.matrix
            let maxDiagonal = (0..<d).map { noisy[$0, $0] }.max() ?? 0
            negative[linear] = maxDiagonal > 0 ? projection.mostNegative / maxDiagonal : projection.mostNegative
            tensors[i].tensor = noisy.converted(to: Float.self)
            gramStd[linear] = std
        }
        // The row counts: one noisy token count shared by every token-level linear, one noisy
        // example count for the pooled ones (each a mechanism of its own).
        let noisyTokens = max(1, Int((Double(tokenRows(metadata, perExampleLinears)) + s * L * draw()).rounded()))
        let noisyExamples = max(1, Int((Double(exampleRows(metadata, perExampleLinears)) + s * draw()).rounded()))
        for key in metadata.keys where key.hasSuffix(".gram.num_rows") {
            let linear = String(key.dropLast(".gram.num_rows".count))
            metadata[key] = "\(perExampleLinears.contains(linear) ? noisyExamples : noisyTokens)"
        }
        let accounting = GramNoiseAccounting(epsilon: settings.epsilon, delta: settings.delta, clip: settings.clip,
                                             unit: "example (add/remove, Gram sample)", maxRowsPerExample: maxRowsPerExample,
                                             mechanisms: mechanisms, rho: PrivacyAccountant.rho(epsilon: settings.epsilon, delta: settings.delta),
                                             noiseMultiplier: s, gramStd: gramStd, projectedNegativeRelative: negative)
        metadata["gram.privacy"] = String(decoding: try JSONEncoder().encode(accounting), as: UTF8.self)
        return accounting
    }

    private static func tokenRows(_ metadata: [String: String], _ perExample: Set<String>) -> Int {
        metadata.first { $0.key.hasSuffix(".gram.num_rows") && !perExample.contains(String($0.key.dropLast(".gram.num_rows".count))) }
            .flatMap { Int($0.value) } ?? 0
    }

    private static func exampleRows(_ metadata: [String: String], _ perExample: Set<String>) -> Int {
        metadata.first { $0.key.hasSuffix(".gram.num_rows") && perExample.contains(String($0.key.dropLast(".gram.num_rows".count))) }
            .flatMap { Int($0.value) } ?? 0
    }
}
