// gemm (every transpose), syrk, axpy/scal/dot against numpy values and closed forms.

import LinAlg
import XCTest

final class BLASTests: XCTestCase {
    func testGemmAllTransposesMatchNumpy() throws {
        let f = try LinAlgFixture.load()["gemm"]!
        let a = try LinAlgFixture.matrix(f, "a", 4, 3)
        let b = try LinAlgFixture.matrix(f, "b", 3, 5)
        // fp64 gemm of O(1) values: agreement to 1e-12.
        assertClose(try matmul(a, b).storage, try LinAlgFixture.doubles(f, "ab"), tolerance: 1e-12, "A·B")
        assertClose(try matmul(a, a, transposeA: true).storage, try LinAlgFixture.doubles(f, "atat"), tolerance: 1e-12, "Aᵀ·A")
        assertClose(try matmul(a, a, transposeB: true).storage, try LinAlgFixture.doubles(f, "aat"), tolerance: 1e-12, "A·Aᵀ")
        assertClose(try matmul(b, a, transposeA: true, transposeB: true).storage, try LinAlgFixture.doubles(f, "btat"), tolerance: 1e-12, "Bᵀ·Aᵀ")
        // fp32 path, same products: float rounding, 1e-5.
        let af = a.converted(to: Float.self), bf = b.converted(to: Float.self)
        assertClose(try matmul(af, bf).storage.map(Double.init), try LinAlgFixture.doubles(f, "ab"), tolerance: 1e-5, "fp32 A·B")
    }

    func testGemmAccumulatesWithAlphaBeta() throws {
        // C = 2·I·B + 3·C with C = ones: closed form 2B + 3.
        let b = Tensor<Double>(rows: [[1, 2], [3, 4]])
        var c = Tensor<Double>(shape: [2, 2], repeating: 1)
        try gemm(.identity(2), b, alpha: 2, beta: 3, into: &c)
        XCTAssertEqual(c.storage, [5, 7, 9, 11])
    }

    func testGemmShapeMismatchNamesBothShapes() {
        var c = Tensor<Double>(shape: [2, 2])
        XCTAssertThrowsError(try gemm(Tensor<Double>(shape: [2, 3]), Tensor<Double>(shape: [4, 2]), into: &c)) { error in
            XCTAssertEqual(error as? LinAlgError, .shapeMismatch(operation: "gemm A·B", lhs: [2, 3], rhs: [4, 2]))
            XCTAssertTrue("\(error)".contains("(2×3)") && "\(error)".contains("(4×2)"), "\(error)")
        }
    }

    func testSyrkAccumulateEqualsExplicitGram() throws {
        let f = try LinAlgFixture.load()["gemm"]!
        let a = try LinAlgFixture.matrix(f, "a", 4, 3)
        var c = Tensor<Double>.identity(3)
        try syrkAccumulate(a, into: &c)               // I + AᵀA, both triangles
        var expected = try LinAlgFixture.doubles(f, "atat")
        for i in 0..<3 { expected[i * 3 + i] += 1 }
        assertClose(c.storage, expected, tolerance: 1e-12)
        try syrkAccumulate(a, alpha: -1, into: &c)    // back to I
        assertClose(c.storage, Tensor<Double>.identity(3).storage, tolerance: 1e-12)
    }

    func testAxpyScalDotClosedForms() throws {
        let x = Tensor<Float>(rows: [[1, 2, 3]])
        var y = Tensor<Float>(rows: [[10, 20, 30]])
        try axpy(2, x, &y)
        XCTAssertEqual(y.storage, [12, 24, 36])
        scal(0.5, &y)
        XCTAssertEqual(y.storage, [6, 12, 18])
        let expected: Float = 1 * 6 + 2 * 12 + 3 * 18
        XCTAssertEqual(try dot(x, y), expected)
    }

    func testThreadCountIsSettable() {
        let before = BLAS.threads
        BLAS.setThreads(1)
        XCTAssertEqual(BLAS.threads, 1)
        BLAS.setThreads(before)
    }
}

final class OpenBLASCoreTests: XCTestCase {
    func testRecommendsFastKernelsOnlyForGenericFallbackWithoutUserChoice() {
        let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"]
        XCTAssertEqual(OpenBLASCore.recommended(cpuFlags: avx512, environment: [:], current: "Prescott"), "SkylakeX")
        XCTAssertEqual(OpenBLASCore.recommended(cpuFlags: ["avx2", "fma"], environment: [:], current: "Prescott"), "Haswell")
        XCTAssertNil(OpenBLASCore.recommended(cpuFlags: ["sse2"], environment: [:], current: "Prescott"))
        XCTAssertNil(OpenBLASCore.recommended(cpuFlags: avx512, environment: [:], current: "Haswell"), "a detected core stands")
        XCTAssertNil(OpenBLASCore.recommended(cpuFlags: avx512, environment: ["OPENBLAS_CORETYPE": "Zen"], current: "Prescott"),
                     "the user's OPENBLAS_CORETYPE always wins")
    }
}
