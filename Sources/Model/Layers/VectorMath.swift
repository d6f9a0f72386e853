// Vectorised exp and erf for the elementwise layers (GELU, softmax): SIMD polynomial forms
// that are accurate to a few Float ulps, replacing per-element libm calls that cost as much as
// the matmuls around them.

/// The lane width: 4 floats, one SSE register. The package builds for baseline x86-64 (no
/// AVX), where wider Swift SIMD types spill to the stack in these long polynomials.
typealias FloatLanes = SIMD4<Float>
typealias Int32Lanes = SIMD4<Int32>

/// e^x for x in [−87, 88] (clamped below, so e^{−∞} gives ≈ 1.6e-38 rather than 0): with
/// n = round(x·log₂e) and r = x − n·ln2 (Cody–Waite: ln2 split in a short high part and a
/// low part, so r keeps full precision even for |x| ≈ 80), e^x = 2^n·e^r; e^r by its Taylor
/// series to degree 7 (|r| ≤ 0.347, truncation < 2e-9 relative), 2^n from exponent bits.
/// Rounding uses the 1.5·2²³ trick — adding it leaves round(z) in the low mantissa bits — so
/// no lane goes through a libm call or a scalar float→int conversion.
@inline(__always)
func simdExp(_ x: FloatLanes) -> FloatLanes {
    // Clamp with masks: `clamped` goes through unspecialised pointwiseMin/Max calls.
    var xc = x.replacing(with: -87, where: x .< -87)
    xc.replace(with: 88, where: xc .> 88)
    let shifted = xc * 1.4426950408889634 + 12582912
    let n = shifted - 12582912
    let f = xc - n * 0.693145751953125 - n * 1.428606765330187e-06
    // e^f = Σ_k f^k / k!, Horner form.
    var p = FloatLanes(repeating: 1.0 / 5040)
    p = p * f + 1.0 / 720
    p = p * f + 1.0 / 120
    p = p * f + 1.0 / 24
    p = p * f + 1.0 / 6
    p = p * f + 0.5
    p = p * f + 1
    p = p * f + 1
    let bits = (unsafeBitCast(shifted, to: Int32Lanes.self) &- 0x4B40_0000 &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: FloatLanes.self)
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7): for x ≥ 0,
/// erf(x) = 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^{−x²}, t = 1/(1 + p·x); odd in x.
/// `expNegSquare` is e^{−x²}, which GELU's backward reuses for the normal density.
@inline(__always)
func simdErf(_ x: FloatLanes, expNegSquare e: FloatLanes) -> FloatLanes {
    let a = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.3275911 * a)
    var poly = FloatLanes(repeating: 1.061405429)
    poly = poly * t - 1.453152027
    poly = poly * t + 1.421413741
    poly = poly * t - 0.284496736
    poly = poly * t + 0.254829592
    poly = poly * t
    let r = 1 - poly * e
    return r.replacing(with: -r, where: x .< 0)
}

/// Loads `count` (< lane count) floats into lanes (rest zero) — the tail of a loop over lanes.
@inline(__always)
func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> FloatLanes {
    var v = FloatLanes(repeating: 0)
    for i in 0..<count { v[i] = p[i] }
    return v
}

@inline(__always)
func storePartial(_ v: FloatLanes, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for i in 0..<count { p[i] = v[i] }
}

/// out[i] = f(inp[i]) over n floats, a lane group at a time (out == inp is allowed).
@inline(__always)
func vectorMap(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count n: Int,
               _ f: (FloatLanes) -> FloatLanes) {
    var i = 0
    while i + FloatLanes.scalarCount <= n {
        let v = UnsafeRawPointer(inp + i).loadUnaligned(as: FloatLanes.self)
        UnsafeMutableRawPointer(out + i).storeBytes(of: f(v), as: FloatLanes.self)
        i += FloatLanes.scalarCount
    }
    if i < n { storePartial(f(loadPartial(inp + i, n - i)), out + i, n - i) }
}

/// x[i] = e^{x[i]} in place over n floats.
func vectorExp(_ x: UnsafeMutablePointer<Float>, count n: Int) {
    vectorMap(x, x, count: n, simdExp)
}

/// Σ f(x[i]) over n floats, one partial sum per lane, lanes added at the end.
@inline(__always)
func lanesSum(_ x: UnsafePointer<Float>, _ n: Int, _ f: (FloatLanes) -> FloatLanes) -> Float {
    var acc = FloatLanes(repeating: 0)
    var i = 0
    while i + FloatLanes.scalarCount <= n {
        acc += f(UnsafeRawPointer(x + i).loadUnaligned(as: FloatLanes.self))
        i += FloatLanes.scalarCount
    }
    var total = acc.sum()
    while i < n { total += f(FloatLanes(repeating: x[i]))[0]; i += 1 }
    return total
}
