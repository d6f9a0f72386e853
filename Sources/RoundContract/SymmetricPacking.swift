// SymmetricPacking: a symmetric d×d matrix (a Gram) as its upper triangle, row by row —
// d(d+1)/2 entries — and back. The layout is part of the round contract: agents pack the
// Gram summands of a secure merge this way and the aggregator unpacks their sum. As int64
// words a packed Gram costs 8·d(d+1)/2 bytes, about the 4·d² of today's fp32 full Gram.

public enum SymmetricPackingError: Error, Equatable, Sendable, CustomStringConvertible {
    case lengthMismatch(what: String, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .lengthMismatch(let what, let expected, let actual): "\(what) has \(actual) entries, expected \(expected)"
        }
    }
}

public enum SymmetricPacking {
    public static func packedCount(dimension d: Int) -> Int { d * (d + 1) / 2 }

    /// Entries (r, c) with c ≥ r of the row-major d×d `full`, row by row. The lower triangle is
    /// not read: a Gram's halves are equal by construction.
    public static func pack<T>(_ full: [T], dimension d: Int) throws -> [T] {
        guard full.count == d * d else { throw SymmetricPackingError.lengthMismatch(what: "symmetric \(d)×\(d) matrix", expected: d * d, actual: full.count) }
        var packed: [T] = []
        packed.reserveCapacity(packedCount(dimension: d))
        for r in 0..<d { packed.append(contentsOf: full[(r * d + r)..<(r * d + d)]) }
        return packed
    }

    /// The row-major d×d matrix whose upper triangle is `packed`, mirrored below.
    public static func unpack<T>(_ packed: [T], dimension d: Int) throws -> [T] {
        guard packed.count == packedCount(dimension: d) else {
            throw SymmetricPackingError.lengthMismatch(what: "packed \(d)×\(d) matrix", expected: packedCount(dimension: d), actual: packed.count)
        }
        guard let filler = packed.first else { return [] }
        var full = [T](repeating: filler, count: d * d)
        var k = 0
        for r in 0..<d {
            for c in r..<d {
                full[r * d + c] = packed[k]
                full[c * d + r] = packed[k]
                k += 1
            }
        }
        return full
    }
}
