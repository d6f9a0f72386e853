// Vectorised exp and erf for the elementwise layers (GELU, softmax): SIMD16 polynomial forms
// that are accurate to a few Float ulps, replacing per-element libm calls that cost as much as
// the matmuls around them.

/// e^x for x in [−87, 88] (clamped below, so e^{−∞} gives ≈ 1.6e-38 rather than 0): with
/// n = round(x·log₂e) and r = x − n·ln2 (Cody–Waite: ln2 split in a short high part and a
/// low part, so r keeps full precision even for |x| ≈ 80), e^x = 2^n·e^r; e^r by its Taylor
/// series to degree 7 (|r| ≤ 0.347, truncation < 2e-9 relative), 2^n from exponent bits.
@inline(__always)
func simdExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let xc = x.clamped(lowerBound: SIMD16(repeating: -87), upperBound: SIMD16(repeating: 88))
    let n = (xc * 1.4426950408889634 + 0.5).rounded(.down)
    let f = xc - n * 0.693145751953125 - n * 1.428606765330187e-06
    // e^f = Σ_k f^k / k!, Horner form.
    var p = SIMD16<Float>(repeating: 1.0 / 5040)
    p = p * f + 1.0 / 720
    p = p * f + 1.0 / 120
    p = p * f + 1.0 / 24
    p = p * f + 1.0 / 6
    p = p * f + 0.5
    p = p * f + 1
    p = p * f + 1
    let bits = (SIMD16<Int32>(n, rounding: .toNearestOrEven) &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: SIMD16<Float>.self)
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7): for x ≥ 0,
/// erf(x) = 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^{−x²}, t = 1/(1 + p·x); odd in x.
/// `expNegSquare` is e^{−x²}, which GELU's backward reuses for the normal density.
@inline(__always)
func simdErf(_ x: SIMD16<Float>, expNegSquare e: SIMD16<Float>) -> SIMD16<Float> {
    let a = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * a)
    var poly = SIMD16<Float>(repeating: 1.061405429)
    poly = poly * t - 1.453152027
    poly = poly * t + 1.421413741
    poly = poly * t - 0.284496736
    poly = poly * t + 0.254829592
    poly = poly * t
    let r = 1 - poly * e
    return r.replacing(with: -r, where: x .< 0)
}

/// Loads `count` (< 16) floats into a SIMD16 (rest zero) — the tail of a loop over 16s.
@inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> SIMD16<Float> {
    var v = SIMD16<Float>(repeating: 0)
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inline(__always)
func storePartial(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { p[i] = v[i] }
}

/// out[i] = f(inp[i]) over n floats, 16 lanes at a time (out == inp is allowed).
@inline(__always)
func vectorMap(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count n: Int,
               _ f: (SIMD16<Float>) -> SIMD16<Float>) {
    var i = 0
    while i + 16 <= n {
        let v = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(out + i).storeBytes(of: f(v), as: SIMD16<Float>.self)
        i += 16
    }
    if i < n { storePartial(f(loadPartial(inp + i, n - i)), out + i, n - i) }
}

/// x[i] = e^{x[i]} in place over n floats.
func vectorExp(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    vectorMap(x, x, count: n, simdExp)
}
