// Conversions between Float and the 16-bit storage formats models arrive in (IEEE fp16, bfloat16).

public enum HalfPrecision {
    /// IEEE 754 binary16 bits → Float (exact).
    @inline(__always)
    public static func floatFromFP16(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: value = mantissa · 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    /// Float → IEEE binary16 bits, rounding to nearest even; overflow gives ±infinity.
    public static func fp16FromFloat(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        if value.isNaN { return sign | 0x7E00 }
        let magnitude = abs(value)
        if magnitude >= 65520 { return sign | 0x7C00 }           // rounds past the largest finite half
        if magnitude < Float(sign: .plus, exponent: -14, significand: 1) {
            // Subnormal half: units of 2^-24, rounded to nearest even by Float's own rounding.
            let units = (magnitude * Float(sign: .plus, exponent: 24, significand: 1)).rounded(.toNearestOrEven)
            return sign | UInt16(units)
        }
        let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
        var mantissa = bits & 0x7F_FFFF
        var e = UInt32(exponent)
        // Round the 23-bit mantissa to 10 bits, nearest even.
        let dropped = mantissa & 0x1FFF
        mantissa >>= 13
        if dropped > 0x1000 || (dropped == 0x1000 && (mantissa & 1) == 1) {
            mantissa += 1
            if mantissa == 0x400 { mantissa = 0; e += 1 }
        }
        return sign | UInt16(e << 10) | UInt16(mantissa)
    }

    /// bfloat16 bits → Float (exact: bf16 is the top half of a float).
    @inline(__always)
    public static func floatFromBF16(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Float → bfloat16 bits, rounding to nearest even; NaN stays NaN.
    @inline(__always)
    public static func bf16FromFloat(_ value: Float) -> UInt16 {
        if value.isNaN { return UInt16(truncatingIfNeeded: (value.bitPattern >> 16) | 0x40) }
        let bits = value.bitPattern
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    public static func floats(fromFP16 bits: UnsafeBufferPointer<UInt16>) -> [Float] {
        bits.map(floatFromFP16)
    }

    public static func floats(fromBF16 bits: UnsafeBufferPointer<UInt16>) -> [Float] {
        bits.map(floatFromBF16)
    }
}
