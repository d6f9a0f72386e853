// Merge parameters: each method declares its parameters (name, kind, required, default, doc)
// as `ParameterSpec`s apart from its arithmetic; `MergeParameters` is a validated set of values.

public struct ParameterSpec: Sendable {
    public enum Kind: Sendable, Equatable {
        /// A number in `range`.
        case number(ClosedRange<Double>)
        /// A number in `range`, or a mergekit-style per-tensor list
        /// `[{filter: "attention", value: 0.5}, {value: 0.9}]`: the first entry whose `filter`
        /// is a substring of the tensor name wins; an entry without `filter` matches every tensor.
        case perTensorNumber(ClosedRange<Double>)
        /// One of these strings.
        case choice([String])
        case string
    }

    public let name: String
    public let kind: Kind
    public let required: Bool
    public let defaultValue: MergeValue?
    public let doc: String

    public init(_ name: String, _ kind: Kind, required: Bool = false, default defaultValue: MergeValue? = nil, doc: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.defaultValue = defaultValue
        self.doc = doc
    }

    /// Checks one value against the kind; the error names the key and what was expected.
    func validate(_ value: MergeValue) throws {
        switch kind {
        case .number(let range):
            guard let x = value.number, x.isFinite, range.contains(x) else { throw bad(value, "a number in \(range)") }
        case .perTensorNumber(let range):
            if let x = value.number, x.isFinite, range.contains(x) { return }
            let expected = "a number in \(range) or a list of {filter: <substring>, value: <number>}"
            guard let items = value.list, !items.isEmpty else { throw bad(value, expected) }
            for item in items {
                guard let m = item.map, let x = m["value"]?.number, x.isFinite, range.contains(x),
                      Set(m.keys).isSubset(of: ["filter", "value"]), m["filter"].map({ $0.string != nil }) ?? true
                else { throw bad(value, expected) }
            }
        case .choice(let options):
            guard let s = value.string, options.contains(s) else { throw bad(value, "one of \(options.joined(separator: " | "))") }
        case .string:
            guard value.string != nil else { throw bad(value, "a string") }
        }
    }

    private func bad(_ value: MergeValue, _ expected: String) -> MergeError {
        .badParameter(key: name, value: value.description, expected: expected)
    }
}

/// Parameters every method accepts: how classifier heads are merged.
public enum CommonParameters {
    public static let specs: [ParameterSpec] = [
        ParameterSpec("heads", .choice(["average", "keep", "per_label"]), default: .string("average"),
                      doc: "Classifier heads: merged like every other tensor (average), one head per model (keep), or each label's row averaged over the models that saw that label (per_label)."),
        ParameterSpec("heads_prefix", .string, default: .string(HeadsNaming.defaultPrefix),
                      doc: "Tensors whose name starts with this are heads."),
    ]

    /// Statistics the heads mode needs from every model (label counts for `per_label`).
    public static func headsStatistics(_ parameters: MergeParameters) -> Set<StatisticKind> {
        parameters.string("heads") == "per_label" ? [.labelCounts] : []
    }

    /// λ, the scale of task vectors added to the base (task_arithmetic, ties).
    static func lambda(doc: String) -> ParameterSpec {
        ParameterSpec("lambda", .number(-1e6...1e6), default: .number(1), doc: doc)
    }

    /// The string a report shows for a parameter value (strings without quotes).
    static func reportString(_ value: MergeValue) -> String {
        if case .string(let s) = value { return s }
        return value.description
    }
}

/// A validated parameter set: every declared parameter has a value (given or default).
public struct MergeParameters: Sendable {
    public let method: String
    public let values: [String: MergeValue]

    /// Validates `raw` against `specs`: unknown keys, missing required keys and bad values are errors.
    public init(validating raw: [String: MergeValue], specs: [ParameterSpec], method: String) throws {
        let known = specs.map(\.name)
        for key in raw.keys.sorted() where !known.contains(key) {
            throw MergeError.unknownParameter(method: method, key: key, known: known)
        }
        var values: [String: MergeValue] = [:]
        for spec in specs {
            if let value = raw[spec.name], value != .null {
                try spec.validate(value)
                values[spec.name] = value
            } else if let value = spec.defaultValue {
                values[spec.name] = value
            } else if spec.required {
                throw MergeError.missingParameter(method: method, key: spec.name)
            }
        }
        self.method = method
        self.values = values
    }

    public func number(_ name: String) -> Double? { values[name]?.number }
    public func string(_ name: String) -> String? { values[name]?.string }

    /// The value of a `perTensorNumber` parameter for `tensor` (see `ParameterSpec.Kind`).
    public func number(_ name: String, forTensor tensor: String) -> Double? {
        guard let value = values[name] else { return nil }
        if let x = value.number { return x }
        for item in value.list ?? [] {
            guard let m = item.map else { continue }
            if let filter = m["filter"]?.string, !tensor.contains(filter) { continue }
            return m["value"]?.number
        }
        return nil
    }
}
