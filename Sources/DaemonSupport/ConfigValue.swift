// Reading configuration files: YAML → ConfigValue (ConfigTree), and the reader that
// validates it key by key with errors naming the file and the key path.

@_exported import ConfigTree
import Foundation
import Yams

/// A view of one mapping in a config file, at a key path, that reads typed values and reports
/// errors with the file and the full key path (`round.methods[1].merge_method`).
public struct ConfigReader: Sendable {
    public let file: String
    public let path: String
    public let map: [String: ConfigValue]
    /// The directory relative paths in this file are resolved against.
    public var directory: String { (file as NSString).deletingLastPathComponent }

    public init(file: String, path: String = "", map: [String: ConfigValue]) {
        self.file = file
        self.path = path
        self.map = map
    }

    /// Parses a YAML file into a reader over its top-level mapping.
    public static func load(file: String) throws -> ConfigReader {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw ConfigError.unreadable(file: file, reason: (error as NSError).localizedDescription)
        }
        let value: ConfigValue
        do { value = try parseYAML(text) } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError.syntax(file: file, reason: "\(error)")
        }
        guard case .map(let map) = value else {
            throw ConfigError.wrongType(file: file, key: "(top level)", expected: "a mapping of keys", found: value.kind)
        }
        return ConfigReader(file: file, map: map)
    }

    public func key(_ name: String) -> String { path.isEmpty ? name : path + "." + name }

    /// Fails on any key not in `allowed`, naming it and the allowed ones.
    public func onlyKeys(_ allowed: [String]) throws {
        for k in map.keys.sorted() where !allowed.contains(k) {
            throw ConfigError.unknownKey(file: file, key: key(k), allowed: allowed)
        }
    }

    public func has(_ name: String) -> Bool { map[name].map { $0 != .null } ?? false }

    public func string(_ name: String, help: String) throws -> String {
        guard let v = map[name], v != .null else { throw ConfigError.missing(file: file, key: key(name), expected: help) }
        switch v {
        case .string(let s): return s
        case .number, .bool: return v.description
        default: throw ConfigError.wrongType(file: file, key: key(name), expected: "a string (\(help))", found: v.kind)
        }
    }

    public func string(_ name: String, default value: String) throws -> String {
        has(name) ? try string(name, help: "") : value
    }

    public func optionalString(_ name: String) throws -> String? {
        has(name) ? try string(name, help: "") : nil
    }

    /// A path, resolved against the config file's directory when relative.
    public func path(_ name: String, help: String) throws -> String {
        resolve(try string(name, help: help))
    }

    public func optionalPath(_ name: String) throws -> String? {
        try optionalString(name).map(resolve)
    }

    public func resolve(_ p: String) -> String {
        let joined = p.hasPrefix("/") || directory.isEmpty ? p : directory + "/" + p
        // "configs/demo/../../x" → "x": shorter in logs, same file.
        return p.hasPrefix("/") || directory.hasPrefix("/") ? URL(fileURLWithPath: joined).standardizedFileURL.path
                                                            : (joined as NSString).standardizingPath
    }

    public func double(_ name: String, default value: Double? = nil, range: ClosedRange<Double>? = nil) throws -> Double {
        guard let v = map[name], v != .null else {
            if let value { return value }
            throw ConfigError.missing(file: file, key: key(name), expected: "a number")
        }
        guard case .number(let x) = v else { throw ConfigError.wrongType(file: file, key: key(name), expected: "a number", found: v.kind) }
        if let range, !range.contains(x) {
            throw ConfigError.invalid(file: file, key: key(name), value: v.description, allowed: "between \(range.lowerBound) and \(range.upperBound)")
        }
        return x
    }

    public func int(_ name: String, default value: Int? = nil, range: ClosedRange<Int>? = nil) throws -> Int {
        guard let v = map[name], v != .null else {
            if let value { return value }
            throw ConfigError.missing(file: file, key: key(name), expected: "a whole number")
        }
        guard case .number(let x) = v, x == x.rounded(), abs(x) < 1e15 else {
            throw ConfigError.wrongType(file: file, key: key(name), expected: "a whole number", found: v.kind == "a number" ? v.description : v.kind)
        }
        if let range, !range.contains(Int(x)) {
            throw ConfigError.invalid(file: file, key: key(name), value: v.description, allowed: "between \(range.lowerBound) and \(range.upperBound)")
        }
        return Int(x)
    }

    public func bool(_ name: String, default value: Bool) throws -> Bool {
        guard let v = map[name], v != .null else { return value }
        guard case .bool(let b) = v else { throw ConfigError.wrongType(file: file, key: key(name), expected: "true or false", found: v.kind) }
        return b
    }

    /// One of `allowed` (a string).
    public func choice(_ name: String, _ allowed: [String], default value: String? = nil) throws -> String {
        let s: String
        if let value, !has(name) { s = value } else { s = try string(name, help: "one of " + allowed.joined(separator: ", ")) }
        guard allowed.contains(s) else {
            throw ConfigError.invalid(file: file, key: key(name), value: "'\(s)'", allowed: "one of " + allowed.joined(separator: ", "))
        }
        return s
    }

    public func strings(_ name: String, help: String) throws -> [String] {
        guard let v = map[name], v != .null else { throw ConfigError.missing(file: file, key: key(name), expected: help) }
        guard case .list(let items) = v else { throw ConfigError.wrongType(file: file, key: key(name), expected: "a list (\(help))", found: v.kind) }
        return try items.enumerated().map { i, item in
            switch item {
            case .string(let s): return s
            case .number, .bool: return item.description
            default: throw ConfigError.wrongType(file: file, key: key(name) + "[\(i)]", expected: "a string", found: item.kind)
            }
        }
    }

    public func section(_ name: String) throws -> ConfigReader {
        guard let v = map[name], v != .null else { throw ConfigError.missing(file: file, key: key(name), expected: "a mapping") }
        guard case .map(let m) = v else { throw ConfigError.wrongType(file: file, key: key(name), expected: "a mapping", found: v.kind) }
        return ConfigReader(file: file, path: key(name), map: m)
    }

    public func optionalSection(_ name: String) throws -> ConfigReader? {
        has(name) ? try section(name) : nil
    }

    /// A list of mappings, each as a reader at `name[i]`.
    public func sections(_ name: String) throws -> [ConfigReader] {
        guard let v = map[name], v != .null else { throw ConfigError.missing(file: file, key: key(name), expected: "a list of mappings") }
        guard case .list(let items) = v else { throw ConfigError.wrongType(file: file, key: key(name), expected: "a list of mappings", found: v.kind) }
        return try items.enumerated().map { i, item in
            guard case .map(let m) = item else {
                throw ConfigError.wrongType(file: file, key: key(name) + "[\(i)]", expected: "a mapping", found: item.kind)
            }
            return ConfigReader(file: file, path: key(name) + "[\(i)]", map: m)
        }
    }
}

/// YAML text → ConfigValue, keeping YAML's scalar typing (int, float, bool, null, string).
public func parseYAML(_ text: String) throws -> ConfigValue {
    guard let node = try Yams.compose(yaml: text) else { return .null }
    return try convertYAML(node)
}

private func convertYAML(_ node: Node) throws -> ConfigValue {
    switch node {
    case .scalar(let scalar):
        switch node.tag.rawValue {
        case Tag.Name.null.rawValue: return .null
        case Tag.Name.bool.rawValue: return node.bool.map(ConfigValue.bool) ?? .string(scalar.string)
        case Tag.Name.int.rawValue: return node.int.map { .number(Double($0)) } ?? .string(scalar.string)
        case Tag.Name.float.rawValue: return node.float.map(ConfigValue.number) ?? .string(scalar.string)
        default: return .string(scalar.string)
        }
    case .sequence(let sequence):
        return .list(try sequence.map(convertYAML))
    case .mapping(let mapping):
        var map: [String: ConfigValue] = [:]
        for (key, value) in mapping {
            guard let k = key.string else { throw ConfigError.syntax(file: "", reason: "a mapping key is not a string") }
            map[k] = try convertYAML(value)
        }
        return .map(map)
    default:
        throw ConfigError.syntax(file: "", reason: "YAML aliases are not supported")
    }
}
