// MergeSpec: the mergekit-style merge configuration (merge_method, base_model, models,
// parameters, dtype), validated from a generic MergeValue tree so that `fedmerge merge`
// (YAML) and the aggregator's merge files share one set of rules and one error vocabulary
// (ConfigTree's ConfigError).

/// A method and its validated parameters: `{merge_method: …, parameters: {…}}`.
public struct MethodChoice: Sendable {
    public let method: any MergeMethod
    public let parameters: MergeParameters
    public let rawParameters: [String: MergeValue]
    public var name: String { method.name }
    public var requiredStatistics: Set<StatisticKind> { method.requiredStatistics(parameters) }
    /// The most models this choice may merge at once (nil: any number).
    public var maxModels: Int? { method.maxModels(parameters) }

    /// Reads `merge_method` and `parameters` from `map` (other keys are the caller's).
    public init(from map: [String: MergeValue], file: String, keyPrefix: String = "") throws {
        let methodKey = keyPrefix + "merge_method"
        guard let value = map["merge_method"] else { throw ConfigError.missing(file: file, key: methodKey, expected: "the merge method, e.g. regmean (`fedmerge merge --methods` lists them)") }
        guard let name = value.string else { throw ConfigError.wrongType(file: file, key: methodKey, expected: "a string", found: value.description) }
        do { method = try MethodRegistry.method(named: name) } catch let e as MergeError {
            throw ConfigError.rejected(file: file, key: methodKey, reason: e.description)
        }
        var raw: [String: MergeValue] = [:]
        if let p = map["parameters"], p != .null {
            guard let m = p.map else { throw ConfigError.wrongType(file: file, key: keyPrefix + "parameters", expected: "a mapping (key: value)", found: p.kind) }
            raw = m
        }
        rawParameters = raw
        do { parameters = try method.validate(parameters: raw) } catch let e as MergeError {
            throw ConfigError.rejected(file: file, key: keyPrefix + "parameters", reason: e.description)
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
        guard let top = document.map else { throw ConfigError.wrongType(file: file, key: "(top level)", expected: "a mapping (key: value)", found: document.kind) }
        for key in top.keys.sorted() where !Self.topLevelKeys.contains(key) {
            throw ConfigError.unknownKey(file: file, key: key, allowed: Self.topLevelKeys)
        }
        choice = try MethodChoice(from: top, file: file)
        if let b = top["base_model"], b != .null {
            guard let s = b.string else { throw ConfigError.wrongType(file: file, key: "base_model", expected: "a path", found: b.description) }
            baseModel = s
        } else {
            baseModel = nil
        }
        if choice.method.needsBase && baseModel == nil {
            throw ConfigError.rejected(file: file, key: "base_model", reason: MergeError.baseModelRequired(method: choice.name).description)
        }
        if let d = top["dtype"], d != .null {
            guard let s = d.string else { throw ConfigError.wrongType(file: file, key: "dtype", expected: "a string", found: d.description) }
            guard Self.supportedDTypes.contains(s) else { throw ConfigError.invalid(file: file, key: "dtype", value: "'\(s)'", allowed: "one of \(Self.supportedDTypes.joined(separator: ", "))") }
            dtype = s
        } else {
            dtype = "float32"
        }
        guard let m = top["models"] else { throw ConfigError.missing(file: file, key: "models", expected: "a list of {model: DIR, stats: FILE}") }
        guard let list = m.list else { throw ConfigError.wrongType(file: file, key: "models", expected: "a list", found: m.description) }
        guard !list.isEmpty else { throw ConfigError.invalid(file: file, key: "models", value: "[]", allowed: "at least one model") }
        var entries: [ModelEntry] = []
        for (i, item) in list.enumerated() {
            let key = "models[\(i)]"
            guard let e = item.map else { throw ConfigError.wrongType(file: file, key: key, expected: "a mapping (key: value)", found: item.kind) }
            for k in e.keys.sorted() where !Self.modelKeys.contains(k) {
                throw ConfigError.unknownKey(file: file, key: key + "." + k, allowed: Self.modelKeys)
            }
            guard let pathValue = e["model"] else { throw ConfigError.missing(file: file, key: key + ".model", expected: "a model directory") }
            guard let path = pathValue.string else { throw ConfigError.wrongType(file: file, key: key + ".model", expected: "a path", found: pathValue.description) }
            var stats: String?
            if let s = e["stats"], s != .null {
                guard let p = s.string else { throw ConfigError.wrongType(file: file, key: key + ".stats", expected: "a path", found: s.description) }
                stats = p
            }
            var name = Self.defaultName(forModelPath: path)
            if let n = e["name"] {
                guard let s = n.string, !s.isEmpty, !s.contains("."), !s.contains("/") else {
                    throw ConfigError.wrongType(file: file, key: key + ".name", expected: "a non-empty name without '.' or '/'", found: n.description)
                }
                name = s
            }
            var weight = 1.0
            if let p = e["parameters"], p != .null {
                guard let pm = p.map else { throw ConfigError.wrongType(file: file, key: key + ".parameters", expected: "a mapping (key: value)", found: p.kind) }
                for k in pm.keys.sorted() where k != "weight" {
                    throw ConfigError.unknownKey(file: file, key: key + ".parameters." + k, allowed: ["weight"])
                }
                if let w = pm["weight"] {
                    guard let x = w.number, x.isFinite, x > 0 else {
                        throw ConfigError.wrongType(file: file, key: key + ".parameters.weight", expected: "a number > 0", found: w.description)
                    }
                    weight = x
                }
            }
            guard !entries.contains(where: { $0.name == name }) else {
                throw ConfigError.invalid(file: file, key: key + ".name", value: "'\(name)'", allowed: "a name no other model has; set distinct `name:` keys")
            }
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
