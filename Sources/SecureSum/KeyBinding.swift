// KeyBinding: what one X25519 key and every seed made from it are good for — one round of
// one merge. Its bytes enter the key's signature and the HKDF info, so a key or seed of one
// round cannot be replayed in another, nor a seed of one merge reused for another merge.

import Foundation

public struct KeyBinding: Sendable, Hashable, CustomStringConvertible {
    public var roundID: String
    public var mergeName: String

    public init(roundID: String, mergeName: String) {
        self.roundID = roundID
        self.mergeName = mergeName
    }

    public var description: String { "round \(roundID.debugDescription), merge \(mergeName.debugDescription)" }
}

/// Unambiguous concatenation: each field as a 4-byte big-endian length then its bytes, after
/// a domain label, so ("ab","c") and ("a","bc") never encode alike.
struct CanonicalBytes {
    private(set) var bytes: [UInt8]

    init(domain: String) {
        bytes = []
        append(Array(domain.utf8))
    }

    mutating func append(_ field: [UInt8]) {
        let n = UInt32(field.count)
        bytes += [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
        bytes += field
    }

    mutating func append(_ text: String) { append(Array(text.utf8)) }
}
