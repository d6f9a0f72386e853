// MergeValue: a configuration value (number, string, bool, list, map) decoded from YAML or
// JSON by the caller, so the Merge target validates configs without depending on a parser.

public enum MergeValue: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case string(String)
    case bool(Bool)
    case list([MergeValue])
    case map([String: MergeValue])
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

    public var number: Double? { if case .number(let x) = self { return x }; return nil }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var list: [MergeValue]? { if case .list(let l) = self { return l }; return nil }
    public var map: [String: MergeValue]? { if case .map(let m) = self { return m }; return nil }
}
