// The one vocabulary of configuration errors — daemon configs (DaemonSupport), merge specs
// and merge files (Merge, Aggregator) alike: each case names the file and the key path.

public enum ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    case unreadable(file: String, reason: String)
    case syntax(file: String, reason: String)
    case missing(file: String, key: String, expected: String)
    case wrongType(file: String, key: String, expected: String, found: String)
    case invalid(file: String, key: String, value: String, allowed: String)
    case unknownKey(file: String, key: String, allowed: [String])
    /// The value at `key` is well-formed but refused by what reads it (e.g. a merge method's own check).
    case rejected(file: String, key: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .syntax(file, reason): return "\(file): not valid YAML: \(reason)"
        case let .missing(file, key, expected): return "\(file): missing key '\(key)' (\(expected))"
        case let .wrongType(file, key, expected, found): return "\(file): '\(key)' must be \(expected), found \(found)"
        case let .invalid(file, key, value, allowed): return "\(file): '\(key)' = \(value) is not allowed: \(allowed)"
        case let .unknownKey(file, key, allowed): return "\(file): unknown key '\(key)' (allowed here: \(allowed.joined(separator: ", ")))"
        case let .rejected(file, key, reason): return "\(file): \(key): \(reason)"
        }
    }
}
