// Tensor: dense row-major storage of Float or Double with a shape, and cheap views into it.

/// A dense row-major tensor. Storage is a Swift array (copy-on-write), so passing a
/// tensor around is cheap and mutation never aliases; hot loops go through
/// `withUnsafeBufferPointer`/`withUnsafeMutableBufferPointer` or a `MatrixView`.
public struct Tensor<Scalar: BLASScalar>: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var storage: [Scalar]

    public init(shape: [Int], repeating value: Scalar = .zero) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = [Scalar](repeating: value, count: shape.reduce(1, *))
    }

    public init(shape: [Int], storage: [Scalar]) throws {
        let expected = shape.reduce(1, *)
        guard storage.count == expected, shape.allSatisfy({ $0 >= 0 }) else {
            throw LinAlgError.storageCountMismatch(shape: shape, expected: expected, actual: storage.count)
        }
        self.shape = shape
        self.storage = storage
    }

    /// A matrix from rows (all the same length); for tests and small literals.
    public init(rows: [[Scalar]]) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols }, "ragged rows")
        self.shape = [rows.count, cols]
        self.storage = rows.flatMap { $0 }
    }

    public static func zeros(_ shape: Int...) -> Tensor { Tensor(shape: shape) }

    public static func identity(_ n: Int) -> Tensor {
        var t = Tensor(shape: [n, n])
        for i in 0..<n { t.storage[i * n + i] = 1 }
        return t
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    /// Leading dimension: the matrix view of any tensor is (shape[0], everything else).
    public var rows: Int { shape.first ?? 1 }
    public var cols: Int { shape.count <= 1 ? (shape.first.map { _ in 1 } ?? 1) : shape.dropFirst().reduce(1, *) }

    public subscript(i: Int, j: Int) -> Scalar {
        get { storage[i * cols + j] }
        set { storage[i * cols + j] = newValue }
    }

    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        try Tensor(shape: newShape, storage: storage)
    }

    /// Matrix transpose of a rank-2 tensor (a copy).
    public func transposed() -> Tensor {
        precondition(rank == 2, "transposed() needs a matrix, got shape \(shape)")
        let (r, c) = (shape[0], shape[1])
        var out = Tensor(shape: [c, r])
        storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for i in 0..<r { for j in 0..<c { dst[j * r + i] = src[i * c + j] } }
            }
        }
        return out
    }

    public func converted<T: BLASScalar>(to _: T.Type = T.self) -> Tensor<T> {
        // Safe: the shape and count are unchanged.
        try! Tensor<T>(shape: shape, storage: storage.map { T($0.asDouble) })
    }

    /// The rows `range` of the matrix view, as a copy-free slice of the storage.
    public func rowSlice(_ range: Range<Int>) -> ArraySlice<Scalar> {
        storage[(range.lowerBound * cols)..<(range.upperBound * cols)]
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer(body)
    }

    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Scalar>) throws -> R) rethrows -> R {
        try storage.withUnsafeMutableBufferPointer(body)
    }

    /// Largest absolute elementwise difference; both tensors must have the same count.
    public func maxAbsDifference(_ other: Tensor) -> Double {
        precondition(count == other.count, "maxAbsDifference: \(shape) vs \(other.shape)")
        var m = 0.0
        for i in 0..<count { m = Swift.max(m, abs(storage[i].asDouble - other.storage[i].asDouble)) }
        return m
    }

    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }

    /// trace / n of a square matrix (0 for 0×0), in fp64: the scale of diagonal damping and jitter.
    public var meanDiagonal: Double {
        let n = rows
        var trace = 0.0
        for i in 0..<n { trace += self[i, i].asDouble }
        return trace / Double(Swift.max(n, 1))
    }
}

/// A non-owning strided window onto a row-major matrix: `rows × cols` elements with
/// leading dimension `ld` (elements between the starts of consecutive rows). Valid only
/// inside the closure that produced its base pointer.
public struct MatrixView<Scalar: BLASScalar> {
    public let base: UnsafeMutablePointer<Scalar>
    public let rows: Int
    public let cols: Int
    public let ld: Int

    public init(base: UnsafeMutablePointer<Scalar>, rows: Int, cols: Int, ld: Int? = nil) {
        self.base = base
        self.rows = rows
        self.cols = cols
        self.ld = ld ?? cols
    }

    public subscript(i: Int, j: Int) -> Scalar {
        get { base[i * ld + j] }
        nonmutating set { base[i * ld + j] = newValue }
    }

    /// Rows `range` and columns `cols` of this view, sharing its storage.
    public func block(rows range: Range<Int>, cols colRange: Range<Int>) -> MatrixView {
        MatrixView(base: base + range.lowerBound * ld + colRange.lowerBound,
                   rows: range.count, cols: colRange.count, ld: ld)
    }
}

extension Tensor {
    /// Runs `body` with a mutable matrix view (shape[0] × rest) of this tensor's storage.
    public mutating func withMatrixView<R>(_ body: (MatrixView<Scalar>) throws -> R) rethrows -> R {
        let (r, c) = (rows, cols)
        return try storage.withUnsafeMutableBufferPointer { buf in
            try body(MatrixView(base: buf.baseAddress!, rows: r, cols: c))
        }
    }
}
