// Which names may become files: spool entries from OFFER, certificate files from `fedmerge
// certs`, agent and method names wherever a daemon turns them into directories. A peer or an
// operator chooses these names, so this is what keeps every path inside its root. Also the
// one way a peer-chosen value enters a log line (control characters escaped).

/// Rules for names that become files (spool entries, certificate files, agent and method directories).
public enum PortableName {
    /// Letters, digits, '-', '.', '_' (not first '.'): safe in a file name and in a DNS label.
    public static func isPortable(_ name: String, maxLength: Int) -> Bool {
        guard (1...maxLength).contains(name.utf8.count), name.utf8.first != UInt8(ascii: ".") else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x2E || c == 0x5F
        }
    }

    /// An agent's name (its certificate name, HELLO name, spool directory): the certificate rule.
    public static func isAgentName(_ name: String) -> Bool { CertificateAuthority.isValidName(name) }

    /// A merge method's label (a directory under the output and under an agent's workdir).
    public static func isMethodLabel(_ name: String) -> Bool {
        isPortable(name, maxLength: 64) && name.utf8.first != UInt8(ascii: "-")
    }

    /// What the portable rule allows, for error messages.
    public static let rule = "1–63 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
}

/// A peer-chosen value made safe for one log line: control characters (newlines included)
/// and backslashes escaped, and at most `limit` characters kept, so a peer cannot forge or
/// flood log lines.
public func loggable(_ value: String, limit: Int = 200) -> String {
    var out = ""
    for scalar in value.unicodeScalars {
        if out.count >= limit { out += "…"; break }
        switch scalar {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
                || scalar.value == 0x2028 || scalar.value == 0x2029 {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
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
