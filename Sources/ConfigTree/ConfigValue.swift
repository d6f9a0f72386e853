// ConfigValue: a configuration document (YAML or JSON) as a plain value tree. The one
// representation both the daemons' configs (DaemonSupport) and the merge specs (Merge) read,
// so neither needs the other, nor a parser, to validate its keys.

public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case string(String)
    case bool(Bool)
    case list([ConfigValue])
    case map([String: ConfigValue])
    case null

    public var description: String {
        switch self {
        case .number(let x): return x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
        case .string(let s): return "'\(s)'"
        case .bool(let b): return String(b)
        case .list(let items): return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .map(let m): return "{" + m.keys.sorted().map { "\($0): \(m[$0]!)" }.joined(separator: ", ") + "}"
        case .null: return "null"
        }
    }

    /// How a config error names what it found instead.
    public var kind: String {
        switch self {
        case .number: return "a number"
        case .string: return "a string"
        case .bool: return "true/false"
        case .list: return "a list"
        case .map: return "a mapping"
        case .null: return "empty"
        }
    }
}

extension ConfigValue {
    public var number: Double? { if case .number(let x) = self { return x }; return nil }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var list: [ConfigValue]? { if case .list(let l) = self { return l }; return nil }
    public var map: [String: ConfigValue]? { if case .map(let m) = self { return m }; return nil }
}
