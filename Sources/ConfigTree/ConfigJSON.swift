// ConfigJSON: a ConfigValue as plain JSON (numbers, strings, booleans, lists, maps, null), so a
// merge's parameters can travel inside a wire header (WELCOME of a secure merge) and be read
// back exactly as the merge file said.

extension ConfigValue: Codable {
    public init(from decoder: Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var items: [ConfigValue] = []
            while !list.isAtEnd { items.append(try list.decode(ConfigValue.self)) }
            self = .list(items)
            return
        }
        if let map = try? decoder.container(keyedBy: AnyKey.self) {
            var values: [String: ConfigValue] = [:]
            for key in map.allKeys { values[key.stringValue] = try map.decode(ConfigValue.self, forKey: key) }
            self = .map(values)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let b = try? single.decode(Bool.self) { self = .bool(b) }
        else if let x = try? single.decode(Double.self) { self = .number(x) }
        else { self = .string(try single.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .list(let items):
            var list = encoder.unkeyedContainer()
            for item in items { try list.encode(item) }
        case .map(let m):
            var map = encoder.container(keyedBy: AnyKey.self)
            for key in m.keys.sorted() { try map.encode(m[key]!, forKey: AnyKey(stringValue: key)) }
        case .number(let x):
            var single = encoder.singleValueContainer(); try single.encode(x)
        case .string(let s):
            var single = encoder.singleValueContainer(); try single.encode(s)
        case .bool(let b):
            var single = encoder.singleValueContainer(); try single.encode(b)
        case .null:
            var single = encoder.singleValueContainer(); try single.encodeNil()
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
