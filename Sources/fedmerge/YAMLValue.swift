// YAML (Yams) → MergeValue: turns a parsed YAML document into the generic value tree the
// Merge target validates, keeping YAML's own scalar typing (int, float, bool, null, string).

import Merge
import Yams

enum YAMLValue {
    struct Unsupported: Error, CustomStringConvertible {
        let detail: String
        var description: String { detail }
    }

    /// Parses `text` into a MergeValue; an empty document is `.null`.
    static func parse(_ text: String) throws -> MergeValue {
        guard let node = try Yams.compose(yaml: text) else { return .null }
        return try convert(node, at: "")
    }

    private static func convert(_ node: Node, at path: String) throws -> MergeValue {
        switch node {
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: return .null
            case Tag.Name.bool.rawValue: return node.bool.map(MergeValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return node.int.map { .number(Double($0)) } ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map(MergeValue.number) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .list(try sequence.enumerated().map { try convert($0.element, at: path + "[\($0.offset)]") })
        case .mapping(let mapping):
            var map: [String: MergeValue] = [:]
            for (key, value) in mapping {
                guard let k = key.string else { throw Unsupported(detail: "a key under '\(path)' is not a string") }
                map[k] = try convert(value, at: path.isEmpty ? k : path + "." + k)
            }
            return .map(map)
        default:
            throw Unsupported(detail: "'\(path)': YAML aliases are not supported")
        }
    }
}
