// PrivacyAccountant: the zero-concentrated-DP (zCDP) bookkeeping of the Gaussian noise on the
// statistics an agent shares (Bun & Steinke, TCC 2016). A Gaussian mechanism with L2
// sensitivity Δ and noise N(0, σ²) per coordinate is ρ = Δ²/(2σ²)-zCDP; k of them compose by
// adding their ρ; ρ-zCDP implies (ρ + 2√(ρ ln(1/δ)), δ)-DP for every δ > 0 (their Prop. 1.3).
// Calibrating every mechanism to the same noise multiplier s = σᵢ/Δᵢ makes the total
// ρ = k/(2s²), so s = √(k/(2ρ)) with ρ the largest budget that still converts to (ε, δ).

import Foundation

public enum PrivacyAccountant {
    /// The largest ρ whose (ε, δ) conversion stays within ε: solve ε = ρ + 2√(ρ L), L = ln(1/δ),
    /// for x = √ρ: x² + 2√L·x − ε = 0, x = √(L + ε) − √L.
    public static func rho(epsilon: Double, delta: Double) -> Double {
        let l = log(1 / delta)
        let x = (l + epsilon).squareRoot() - l.squareRoot()
        return x * x
    }

    /// ε of ρ-zCDP at δ (the conversion above).
    public static func epsilon(rho: Double, delta: Double) -> Double {
        rho + 2 * (rho * log(1 / delta)).squareRoot()
    }

    /// The noise multiplier s (σ = s·Δ for each mechanism) at which `mechanisms` Gaussian
    /// mechanisms together are (ε, δ)-DP.
    public static func noiseMultiplier(epsilon: Double, delta: Double, mechanisms: Int) -> Double {
        (Double(mechanisms) / (2 * rho(epsilon: epsilon, delta: delta))).squareRoot()
    }
}
