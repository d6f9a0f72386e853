// MergeSpec: the mergekit-style merge configuration (merge_method, base_model, models,
// parameters, dtype), validated from a generic MergeValue tree so that `fedmerge merge`
// (YAML) and the aggregator's `round.methods` list share one set of rules and messages.

/// A configuration problem; `file` and `key` (a dotted path such as `models[1].parameters.weight`)
/// say where.
public enum MergeSpecError: Error, CustomStringConvertible, Equatable, Sendable {
    case notAMapping(file: String, key: String)
    case missingKey(file: String, key: String)
    case wrongType(file: String, key: String, expected: String, found: String)
    case unknownKey(file: String, key: String, known: [String])
    case noModels(file: String)
    case duplicateModelName(file: String, name: String)
    case unsupportedDType(file: String, dtype: String, supported: [String])
    /// A method-level problem (unknown method, bad parameter, missing base) at `key`.
    case invalid(file: String, key: String, reason: MergeError)

    public var description: String {
        switch self {
        case let .notAMapping(file, key): return "\(file): \(key.isEmpty ? "the document" : key) must be a mapping (key: value)"
        case let .missingKey(file, key): return "\(file): missing required key '\(key)'"
        case let .wrongType(file, key, expected, found): return "\(file): '\(key)' must be \(expected), found \(found)"
        case let .unknownKey(file, key, known): return "\(file): unknown key '\(key)'; allowed here: \(known.joined(separator: ", "))"
        case let .noModels(file): return "\(file): 'models' lists no models"
        case let .duplicateModelName(file, name): return "\(file): two models are named '\(name)'; set distinct `name:` keys"
        case let .unsupportedDType(file, dtype, supported):
            return "\(file): dtype '\(dtype)' is not supported; use one of \(supported.joined(separator: ", "))"
        case let .invalid(file, key, reason): return "\(file): \(key): \(reason)"
        }
    }
}

/// A method and its validated parameters: `{merge_method: …, parameters: {…}}`.
public struct MethodChoice: Sendable {
    public let method: any MergeMethod
    public let parameters: MergeParameters
    public let rawParameters: [String: MergeValue]
    public var name: String { method.name }
    public var requiredStatistics: Set<StatisticKind> { method.requiredStatistics(parameters) }

    /// Reads `merge_method` and `parameters` from `map` (other keys are the caller's).
    public init(from map: [String: MergeValue], file: String, keyPrefix: String = "") throws {
        let methodKey = keyPrefix + "merge_method"
        guard let value = map["merge_method"] else { throw MergeSpecError.missingKey(file: file, key: methodKey) }
        guard let name = value.string else { throw MergeSpecError.wrongType(file: file, key: methodKey, expected: "a string", found: value.description) }
        do { method = try MethodRegistry.method(named: name) } catch let e as MergeError {
            throw MergeSpecError.invalid(file: file, key: methodKey, reason: e)
        }
        var raw: [String: MergeValue] = [:]
        if let p = map["parameters"], p != .null {
            guard let m = p.map else { throw MergeSpecError.notAMapping(file: file, key: keyPrefix + "parameters") }
            raw = m
        }
        rawParameters = raw
        do { parameters = try method.validate(parameters: raw) } catch let e as MergeError {
            throw MergeSpecError.invalid(file: file, key: keyPrefix + "parameters", reason: e)
        }
    }

    public func makeAccumulator(base: NamedTensors?) throws -> any MergeAccumulator {
        if method.needsBase && base == nil { throw MergeError.baseModelRequired(method: name) }
        return try method.makeAccumulator(validated: parameters, base: base)
    }
}

public struct MergeSpec: Sendable {
    public struct ModelEntry: Sendable, Equatable {
        /// Model directory (HF layout) as written in the config.
        public var model: String
        /// stats.safetensors path (nil: `<model>/stats.safetensors` or none for methods needing none).
        public var stats: String?
        /// Name for reports and `heads: keep` (default: the directory's name, or its parent's when it is `model`).
        public var name: String
        public var weight: Double
    }

    public static let topLevelKeys = ["merge_method", "base_model", "models", "parameters", "dtype"]
    public static let modelKeys = ["model", "stats", "name", "parameters"]
    public static let supportedDTypes = ["float32"]

    public let choice: MethodChoice
    public let baseModel: String?
    public let models: [ModelEntry]
    public let dtype: String

    public init(from document: MergeValue, file: String) throws {
        guard let top = document.map else { throw MergeSpecError.notAMapping(file: file, key: "") }
        for key in top.keys.sorted() where !Self.topLevelKeys.contains(key) {
            throw MergeSpecError.unknownKey(file: file, key: key, known: Self.topLevelKeys)
        }
        choice = try MethodChoice(from: top, file: file)
        if let b = top["base_model"], b != .null {
            guard let s = b.string else { throw MergeSpecError.wrongType(file: file, key: "base_model", expected: "a path", found: b.description) }
            baseModel = s
        } else {
            baseModel = nil
        }
        if choice.method.needsBase && baseModel == nil {
            throw MergeSpecError.invalid(file: file, key: "base_model", reason: .baseModelRequired(method: choice.name))
        }
        if let d = top["dtype"], d != .null {
            guard let s = d.string else { throw MergeSpecError.wrongType(file: file, key: "dtype", expected: "a string", found: d.description) }
            guard Self.supportedDTypes.contains(s) else { throw MergeSpecError.unsupportedDType(file: file, dtype: s, supported: Self.supportedDTypes) }
            dtype = s
        } else {
            dtype = "float32"
        }
        guard let m = top["models"] else { throw MergeSpecError.missingKey(file: file, key: "models") }
        guard let list = m.list else { throw MergeSpecError.wrongType(file: file, key: "models", expected: "a list", found: m.description) }
        guard !list.isEmpty else { throw MergeSpecError.noModels(file: file) }
        var entries: [ModelEntry] = []
        for (i, item) in list.enumerated() {
            let key = "models[\(i)]"
            guard let e = item.map else { throw MergeSpecError.notAMapping(file: file, key: key) }
            for k in e.keys.sorted() where !Self.modelKeys.contains(k) {
                throw MergeSpecError.unknownKey(file: file, key: key + "." + k, known: Self.modelKeys)
            }
            guard let pathValue = e["model"] else { throw MergeSpecError.missingKey(file: file, key: key + ".model") }
            guard let path = pathValue.string else { throw MergeSpecError.wrongType(file: file, key: key + ".model", expected: "a path", found: pathValue.description) }
            var stats: String?
            if let s = e["stats"], s != .null {
                guard let p = s.string else { throw MergeSpecError.wrongType(file: file, key: key + ".stats", expected: "a path", found: s.description) }
                stats = p
            }
            var name = Self.defaultName(forModelPath: path)
            if let n = e["name"] {
                guard let s = n.string, !s.isEmpty, !s.contains("."), !s.contains("/") else {
                    throw MergeSpecError.wrongType(file: file, key: key + ".name", expected: "a non-empty name without '.' or '/'", found: n.description)
                }
                name = s
            }
            var weight = 1.0
            if let p = e["parameters"], p != .null {
                guard let pm = p.map else { throw MergeSpecError.notAMapping(file: file, key: key + ".parameters") }
                for k in pm.keys.sorted() where k != "weight" {
                    throw MergeSpecError.unknownKey(file: file, key: key + ".parameters." + k, known: ["weight"])
                }
                if let w = pm["weight"] {
                    guard let x = w.number, x.isFinite, x > 0 else {
                        throw MergeSpecError.wrongType(file: file, key: key + ".parameters.weight", expected: "a number > 0", found: w.description)
                    }
                    weight = x
                }
            }
            guard !entries.contains(where: { $0.name == name }) else { throw MergeSpecError.duplicateModelName(file: file, name: name) }
            entries.append(ModelEntry(model: path, stats: stats, name: name, weight: weight))
        }
        models = entries
    }

    /// `agents/a/model` → `a`; `runs/sst2` → `sst2`.
    public static func defaultName(forModelPath path: String) -> String {
        var parts = path.split(separator: "/").map(String.init).filter { $0 != "." }
        if parts.count > 1, ["model", "merged", "final"].contains(parts.last!) { parts.removeLast() }
        let raw = parts.last ?? "model"
        return String(raw.map { $0 == "." ? "_" : $0 })
    }
}
