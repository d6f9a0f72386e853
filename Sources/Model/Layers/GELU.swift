// GELU activation in its exact erf form (HF `hidden_act: "gelu"`), forward and backward,
// 16 lanes at a time (VectorMath.swift: erf to 1.5e-7, exp to a few ulps).

private let invSqrt2: Float = 0.70710678118654752
private let invSqrt2Pi: Float = 0.39894228040143268

/// out (N) = 0.5 · x · (1 + erf(x/√2)) elementwise.
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count n: Int) {
    vectorMap(out, inp, count: n) { x in
        let u = x * invSqrt2
        return 0.5 * x * (1 + simdErf(u, expNegSquare: simdExp(-u * u)))
    }
}

/// dinp (N) += dout · GELU'(x), GELU'(x) = Φ(x) + x·φ(x) with Φ the normal CDF and φ its
/// density; φ(x) = e^{−x²/2}/√(2π) is the same exponential erf(x/√2) needs.
public func geluBackward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                         dout: UnsafePointer<Float>, count n: Int) {
    @inline(__always) func slope(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let u = x * invSqrt2
        let e = simdExp(-u * u)
        return 0.5 * (1 + simdErf(u, expNegSquare: e)) + x * (invSqrt2Pi * e)
    }
    var i = 0
    while i + 16 <= n {
        let x = UnsafeRawPointer(inp + i).loadUnaligned(as: SIMD16<Float>.self)
        let d = UnsafeRawPointer(dout + i).loadUnaligned(as: SIMD16<Float>.self)
        let g = UnsafeRawPointer(dinp + i).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(dinp + i).storeBytes(of: g + d * slope(x), as: SIMD16<Float>.self)
        i += 16
    }
    if i < n {
        let k = n - i
        storePartial(loadPartial(dinp + i, k) + loadPartial(dout + i, k) * slope(loadPartial(inp + i, k)), dinp + i, k)
    }
}
