// fp16/bf16 conversions against IEEE 754 closed forms.

import LinAlg
import XCTest

final class HalfPrecisionTests: XCTestCase {
    func testFP16KnownBitPatterns() {
        // (bits, value) pairs from the IEEE 754 binary16 definition.
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x8000, -0.0), (0x3C00, 1), (0xC000, -2), (0x7BFF, 65504),
            (0x0400, 6.103515625e-05),          // smallest normal 2^-14
            (0x0001, 5.9604644775390625e-08),   // smallest subnormal 2^-24
            (0x3555, 0.333251953125), (0x7C00, .infinity), (0xFC00, -.infinity),
        ]
        for (bits, value) in cases {
            XCTAssertEqual(HalfPrecision.floatFromFP16(bits), value, "bits \(String(bits, radix: 16))")
            XCTAssertEqual(HalfPrecision.fp16FromFloat(value), bits, "value \(value)")
        }
        XCTAssertTrue(HalfPrecision.floatFromFP16(0x7E00).isNaN)
    }

    func testFP16RoundsToNearestEven() {
        // 1 + 2^-11 lies exactly between 1 (0x3C00) and 1 + 2^-10 (0x3C01): ties to even → 0x3C00.
        XCTAssertEqual(HalfPrecision.fp16FromFloat(1 + 0x1p-11), 0x3C00)
        // 1 + 3·2^-11 lies between 0x3C01 and 0x3C02: ties to even → 0x3C02.
        XCTAssertEqual(HalfPrecision.fp16FromFloat(1 + 3 * 0x1p-11), 0x3C02)
        XCTAssertEqual(HalfPrecision.fp16FromFloat(70000), 0x7C00, "overflow saturates to infinity")
    }

    func testFP16RoundTripsEveryFiniteHalf() {
        for bits in UInt16(0)...UInt16.max where (bits & 0x7C00) != 0x7C00 {
            let back = HalfPrecision.fp16FromFloat(HalfPrecision.floatFromFP16(bits))
            XCTAssertEqual(back, bits, "bits \(String(bits, radix: 16))")
            if back != bits { return }
        }
    }

    func testBF16TruncatesToUpperHalfWithRounding() {
        XCTAssertEqual(HalfPrecision.floatFromBF16(0x3F80), 1)
        XCTAssertEqual(HalfPrecision.floatFromBF16(0xC049), -3.140625)
        XCTAssertEqual(HalfPrecision.bf16FromFloat(1), 0x3F80)
        // 1 + 2^-8 is the midpoint of 1 and 1 + 2^-7: ties to even → 1.
        XCTAssertEqual(HalfPrecision.bf16FromFloat(1 + 0x1p-8), 0x3F80)
        XCTAssertEqual(HalfPrecision.bf16FromFloat(1 + 0x1p-8 + 0x1p-12), 0x3F81)
        XCTAssertTrue(HalfPrecision.floatFromBF16(HalfPrecision.bf16FromFloat(.nan)).isNaN)
    }
}
