// BLAS level-1/2/3 entry points over raw pointers (row-major), for Float and Double.
// Everything that multiplies matrices in FedMerge comes through here.

import CBLAS
import Dispatch
import Foundation

/// The two element types LinAlg computes in. Each conformance routes to the s/d routine.
public protocol BLASScalar: BinaryFloatingPoint, Sendable, Codable where Self.RawSignificand: FixedWidthInteger {
    init(_ value: Double)
    var asDouble: Double { get }

    static func _gemm(_ tA: CBLAS_TRANSPOSE, _ tB: CBLAS_TRANSPOSE, _ m: Int32, _ n: Int32, _ k: Int32,
                      _ alpha: Self, _ a: UnsafePointer<Self>, _ lda: Int32, _ b: UnsafePointer<Self>, _ ldb: Int32,
                      _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int32)
    static func _syrk(_ trans: CBLAS_TRANSPOSE, _ n: Int32, _ k: Int32, _ alpha: Self,
                      _ a: UnsafePointer<Self>, _ lda: Int32, _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int32)
    static func _axpy(_ n: Int32, _ alpha: Self, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>)
    static func _scal(_ n: Int32, _ alpha: Self, _ x: UnsafeMutablePointer<Self>)
    static func _dot(_ n: Int32, _ x: UnsafePointer<Self>, _ y: UnsafePointer<Self>) -> Self
    /// B ← op(A)⁻¹ B or B op(A)⁻¹ (`inverse`, trsm), else op(A) B or B op(A) (trmm); A upper triangular.
    static func _triangular(_ side: CBLAS_SIDE, _ trans: CBLAS_TRANSPOSE, _ inverse: Bool, _ m: Int32, _ n: Int32,
                            _ a: UnsafePointer<Self>, _ lda: Int32, _ b: UnsafeMutablePointer<Self>, _ ldb: Int32)
}

extension Float: BLASScalar {
    public var asDouble: Double { Double(self) }
    public static func _gemm(_ tA: CBLAS_TRANSPOSE, _ tB: CBLAS_TRANSPOSE, _ m: Int32, _ n: Int32, _ k: Int32,
                             _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int32, _ b: UnsafePointer<Float>, _ ldb: Int32,
                             _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int32) {
        cblas_sgemm(CblasRowMajor, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    public static func _syrk(_ trans: CBLAS_TRANSPOSE, _ n: Int32, _ k: Int32, _ alpha: Float,
                             _ a: UnsafePointer<Float>, _ lda: Int32, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int32) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, trans, n, k, alpha, a, lda, beta, c, ldc)
    }
    public static func _axpy(_ n: Int32, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(n, alpha, x, 1, y, 1)
    }
    public static func _scal(_ n: Int32, _ alpha: Float, _ x: UnsafeMutablePointer<Float>) {
        cblas_sscal(n, alpha, x, 1)
    }
    public static func _dot(_ n: Int32, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        cblas_sdot(n, x, 1, y, 1)
    }
    public static func _triangular(_ side: CBLAS_SIDE, _ trans: CBLAS_TRANSPOSE, _ inverse: Bool, _ m: Int32, _ n: Int32,
                                   _ a: UnsafePointer<Float>, _ lda: Int32, _ b: UnsafeMutablePointer<Float>, _ ldb: Int32) {
        if inverse { cblas_strsm(CblasRowMajor, side, CblasUpper, trans, CblasNonUnit, m, n, 1, a, lda, b, ldb) }
        else { cblas_strmm(CblasRowMajor, side, CblasUpper, trans, CblasNonUnit, m, n, 1, a, lda, b, ldb) }
    }
}

extension Double: BLASScalar {
    public var asDouble: Double { self }
    public static func _gemm(_ tA: CBLAS_TRANSPOSE, _ tB: CBLAS_TRANSPOSE, _ m: Int32, _ n: Int32, _ k: Int32,
                             _ alpha: Double, _ a: UnsafePointer<Double>, _ lda: Int32, _ b: UnsafePointer<Double>, _ ldb: Int32,
                             _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int32) {
        cblas_dgemm(CblasRowMajor, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    public static func _syrk(_ trans: CBLAS_TRANSPOSE, _ n: Int32, _ k: Int32, _ alpha: Double,
                             _ a: UnsafePointer<Double>, _ lda: Int32, _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int32) {
        cblas_dsyrk(CblasRowMajor, CblasUpper, trans, n, k, alpha, a, lda, beta, c, ldc)
    }
    public static func _axpy(_ n: Int32, _ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>) {
        cblas_daxpy(n, alpha, x, 1, y, 1)
    }
    public static func _scal(_ n: Int32, _ alpha: Double, _ x: UnsafeMutablePointer<Double>) {
        cblas_dscal(n, alpha, x, 1)
    }
    public static func _dot(_ n: Int32, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
        cblas_ddot(n, x, 1, y, 1)
    }
    public static func _triangular(_ side: CBLAS_SIDE, _ trans: CBLAS_TRANSPOSE, _ inverse: Bool, _ m: Int32, _ n: Int32,
                                   _ a: UnsafePointer<Double>, _ lda: Int32, _ b: UnsafeMutablePointer<Double>, _ ldb: Int32) {
        if inverse { cblas_dtrsm(CblasRowMajor, side, CblasUpper, trans, CblasNonUnit, m, n, 1, a, lda, b, ldb) }
        else { cblas_dtrmm(CblasRowMajor, side, CblasUpper, trans, CblasNonUnit, m, n, 1, a, lda, b, ldb) }
    }
}

/// Raw-pointer BLAS, row-major. Shapes follow the math: C (m×n) = α op(A) (m×k) · op(B) (k×n) + β C.
public enum BLAS {
    /// Sets OpenBLAS's thread count for everything after this call (process-wide).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Runs body(0..<iterations) on that many concurrent threads, each calling single-threaded
    /// BLAS (OpenBLAS held at one thread meanwhile, then restored), so independent small BLAS
    /// jobs fill the cores instead of splitting each call. body may not change the thread count.
    public static func concurrentPerform(iterations: Int, _ body: @escaping (Int) -> Void) {
        let saved = threads
        setThreads(1)
        defer { setThreads(saved) }
        let work = UncheckedWork(run: body)
        DispatchQueue.concurrentPerform(iterations: iterations) { work.run($0) }
    }

    /// concurrentPerform for bodies that throw: every iteration runs, started in `order` (a
    /// permutation of 0..<iterations; default ascending); then the error of the lowest-numbered
    /// iteration that threw, if any, is rethrown.
    public static func concurrentPerform(iterations: Int, order: [Int]? = nil, throwing body: @escaping (Int) throws -> Void) throws {
        let errors = ErrorSlots(count: iterations)
        concurrentPerform(iterations: iterations) { k in
            let i = order?[k] ?? k
            do { try body(i) } catch { errors.set(i, error) }
        }
        if let first = errors.first { throw first }
    }

    /// One error slot per iteration, behind a lock.
    private final class ErrorSlots: @unchecked Sendable {
        private var slots: [Error?]
        private let lock = NSLock()
        init(count: Int) { slots = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ e: Error) { lock.lock(); slots[i] = e; lock.unlock() }
        var first: Error? { lock.lock(); defer { lock.unlock() }; return slots.compactMap { $0 }.first }
    }

    /// A closure handed to the worker threads; its captures are the caller's to keep disjoint.
    private struct UncheckedWork: @unchecked Sendable {
        let run: (Int) -> Void
    }

    /// C (m×n) = α op(A) op(B) + β C. `lda`, `ldb`, `ldc` are row strides of the stored matrices
    /// (A stored m×k, or k×m when transposed; likewise B).
    @inline(__always)
    public static func gemm<S: BLASScalar>(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                                           alpha: S = 1, a: UnsafePointer<S>, lda: Int,
                                           b: UnsafePointer<S>, ldb: Int,
                                           beta: S = 0, c: UnsafeMutablePointer<S>, ldc: Int) {
        S._gemm(transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Upper triangle of C (d×d) = α XᵀX + β C for X stored (rows×d) with row stride `ldx`.
    /// Only the upper triangle is written; call `symmetrizeUpper` before reading the lower one.
    @inline(__always)
    public static func syrkTransposed<S: BLASScalar>(d: Int, rows: Int, alpha: S = 1, x: UnsafePointer<S>, ldx: Int,
                                                     beta: S = 1, c: UnsafeMutablePointer<S>, ldc: Int) {
        S._syrk(CblasTrans, Int32(d), Int32(rows), alpha, x, Int32(ldx), beta, c, Int32(ldc))
    }

    public enum Side: Sendable { case left, right }

    /// X ← op(U) X (`.left`, X n × count) or X op(U) (`.right`, X count × n) in place, U (n×n,
    /// row stride n) upper triangular — its strict lower triangle is never read —, op(U) one of
    /// U, Uᵀ, U⁻¹, U⁻ᵀ: trmm, or trsm for the inverses. X is row-major and contiguous.
    @inline(__always)
    public static func triangular<S: BLASScalar>(_ side: Side, u: UnsafePointer<S>, n: Int, x: UnsafeMutablePointer<S>, count: Int,
                                                 transposed: Bool, inverse: Bool) {
        guard n > 0, count > 0 else { return }
        let (rows, cols) = side == .left ? (n, count) : (count, n)
        S._triangular(side == .left ? CblasLeft : CblasRight, transposed ? CblasTrans : CblasNoTrans, inverse,
                      Int32(rows), Int32(cols), u, Int32(n), x, Int32(cols))
    }

    /// y += α x over n elements.
    @inline(__always)
    public static func axpy<S: BLASScalar>(n: Int, alpha: S, x: UnsafePointer<S>, y: UnsafeMutablePointer<S>) {
        S._axpy(Int32(n), alpha, x, y)
    }

    /// x *= α over n elements.
    @inline(__always)
    public static func scal<S: BLASScalar>(n: Int, alpha: S, x: UnsafeMutablePointer<S>) {
        S._scal(Int32(n), alpha, x)
    }

    @inline(__always)
    public static func dot<S: BLASScalar>(n: Int, x: UnsafePointer<S>, y: UnsafePointer<S>) -> S {
        S._dot(Int32(n), x, y)
    }

    /// Copies the upper triangle of the n×n matrix `c` onto its lower triangle.
    public static func symmetrizeUpper<S: BLASScalar>(n: Int, c: UnsafeMutablePointer<S>, ldc: Int) {
        for i in 1..<max(n, 1) {
            for j in 0..<i { c[i * ldc + j] = c[j * ldc + i] }
        }
    }
}

// MARK: - Tensor-level wrappers (shape-checked)

/// C = α op(A) op(B) + β C for rank-2 tensors, checking every shape.
public func gemm<S: BLASScalar>(_ a: Tensor<S>, _ b: Tensor<S>, transposeA: Bool = false, transposeB: Bool = false,
                                alpha: S = 1, beta: S = 0, into c: inout Tensor<S>) throws {
    guard a.rank == 2, b.rank == 2, c.rank == 2 else {
        throw LinAlgError.shapeMismatch(operation: "gemm", lhs: a.shape, rhs: b.shape)
    }
    let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (kb, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    guard k == kb else {
        throw LinAlgError.shapeMismatch(operation: "gemm" + (transposeA ? " Aᵀ" : " A") + (transposeB ? "·Bᵀ" : "·B"),
                                        lhs: a.shape, rhs: b.shape)
    }
    guard c.shape == [m, n] else {
        throw LinAlgError.shapeMismatch(operation: "gemm output", lhs: [m, n], rhs: c.shape)
    }
    let (lda, ldb) = (a.shape[1], b.shape[1])
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
                BLAS.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress!, lda: max(lda, 1), b: pb.baseAddress!, ldb: max(ldb, 1),
                          beta: beta, c: pc.baseAddress!, ldc: max(n, 1))
            }
        }
    }
}

/// op(A) op(B) as a new tensor.
public func matmul<S: BLASScalar>(_ a: Tensor<S>, _ b: Tensor<S>, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor<S> {
    guard a.rank == 2, b.rank == 2 else { throw LinAlgError.shapeMismatch(operation: "matmul", lhs: a.shape, rhs: b.shape) }
    let m = transposeA ? a.shape[1] : a.shape[0]
    let n = transposeB ? b.shape[0] : b.shape[1]
    var c = Tensor<S>(shape: [m, n])
    try gemm(a, b, transposeA: transposeA, transposeB: transposeB, into: &c)
    return c
}

/// C += α XᵀX for X (rows×d), C (d×d); afterwards C is fully symmetric.
public func syrkAccumulate<S: BLASScalar>(_ x: Tensor<S>, alpha: S = 1, into c: inout Tensor<S>) throws {
    guard x.rank == 2, c.shape == [x.shape[1], x.shape[1]] else {
        throw LinAlgError.shapeMismatch(operation: "syrk C += XᵀX", lhs: x.shape, rhs: c.shape)
    }
    let (rows, d) = (x.shape[0], x.shape[1])
    guard d > 0 else { return }
    x.withUnsafeBufferPointer { px in
        c.withUnsafeMutableBufferPointer { pc in
            // syrk leaves the lower triangle alone; copying the lower onto the upper first would
            // double-count, so accumulate into the upper and mirror it.
            BLAS.syrkTransposed(d: d, rows: rows, alpha: alpha, x: px.baseAddress!, ldx: d, beta: 1,
                                c: pc.baseAddress!, ldc: d)
            BLAS.symmetrizeUpper(n: d, c: pc.baseAddress!, ldc: d)
        }
    }
}

/// y += α x.
public func axpy<S: BLASScalar>(_ alpha: S, _ x: Tensor<S>, _ y: inout Tensor<S>) throws {
    guard x.count == y.count else { throw LinAlgError.shapeMismatch(operation: "axpy", lhs: x.shape, rhs: y.shape) }
    guard x.count > 0 else { return }
    x.withUnsafeBufferPointer { px in
        y.withUnsafeMutableBufferPointer { py in BLAS.axpy(n: x.count, alpha: alpha, x: px.baseAddress!, y: py.baseAddress!) }
    }
}

/// x *= α.
public func scal<S: BLASScalar>(_ alpha: S, _ x: inout Tensor<S>) {
    guard x.count > 0 else { return }
    let n = x.count
    x.withUnsafeMutableBufferPointer { px in BLAS.scal(n: n, alpha: alpha, x: px.baseAddress!) }
}

public func dot<S: BLASScalar>(_ x: Tensor<S>, _ y: Tensor<S>) throws -> S {
    guard x.count == y.count else { throw LinAlgError.shapeMismatch(operation: "dot", lhs: x.shape, rhs: y.shape) }
    guard x.count > 0 else { return 0 }
    return x.withUnsafeBufferPointer { px in
        y.withUnsafeBufferPointer { py in BLAS.dot(n: x.count, x: px.baseAddress!, y: py.baseAddress!) }
    }
}
