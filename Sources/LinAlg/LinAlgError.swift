// The errors LinAlg throws; each case carries what a caller needs to name the fault.

public enum LinAlgError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Two operands whose shapes do not fit together, e.g. gemm (3×4)·(5×2).
    case shapeMismatch(operation: String, lhs: [Int], rhs: [Int])
    /// Storage of the wrong length for the shape it was given.
    case storageCountMismatch(shape: [Int], expected: Int, actual: Int)
    /// Cholesky failed: the leading minor of this order (1-based) is not positive definite.
    case notPositiveDefinite(minor: Int, size: Int)
    /// A LAPACK routine reported an illegal argument or failed to converge.
    case lapackFailure(routine: String, info: Int)
    /// A matrix argument that must be square is not.
    case notSquare(operation: String, shape: [Int])
    /// A NaN or infinity in an input where the result would be meaningless.
    case nonFinite(operation: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, lhs, rhs):
            return "\(operation): shapes do not fit: \(Self.format(lhs)) and \(Self.format(rhs))"
        case let .storageCountMismatch(shape, expected, actual):
            return "tensor of shape \(Self.format(shape)) needs \(expected) elements, got \(actual)"
        case let .notPositiveDefinite(minor, size):
            return "matrix (\(size)×\(size)) is not positive definite: leading minor of order \(minor) is not positive"
        case let .lapackFailure(routine, info):
            return "LAPACK \(routine) failed with info = \(info)"
        case let .notSquare(operation, shape):
            return "\(operation) needs a square matrix, got \(Self.format(shape))"
        case let .nonFinite(operation):
            return "\(operation): input contains NaN or infinity"
        }
    }

    static func format(_ shape: [Int]) -> String {
        "(" + shape.map(String.init).joined(separator: "×") + ")"
    }
}
