// Which names may become files: spool entries from OFFER and certificate files from
// `fedmerge certs`. A peer chooses OFFER names, so this is what keeps it inside the spool.

/// Rules for names that become files (spool entries, certificate files).
enum PortableName {
    /// Letters, digits, '-', '.', '_': safe in a file name and in a DNS label.
    static func isPortable(_ name: String, maxLength: Int) -> Bool {
        guard (1...maxLength).contains(name.utf8.count), name.utf8.first != UInt8(ascii: ".") else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x2E || c == 0x5F
        }
    }
}

enum TransferName {
    /// A spool name may not collide with the receiver's own .partial / .offer files.
    static func isValid(_ name: String) -> Bool {
        PortableName.isPortable(name, maxLength: 200) && !name.hasSuffix(".partial") && !name.hasSuffix(".offer")
    }

    static func isValidDigest(_ digest: String) -> Bool {
        digest.utf8.count == 64 && digest.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}
