// The merge-method contract: a method declares its parameters and makes a streaming
// accumulator; the accumulator folds in one model at a time and finishes into tensors.

import LinAlg
// StatisticKind (what a method asks each model for) is the round contract's; Merge's users see it here.
@_exported import RoundContract

public protocol MergeMethod: Sendable {
    /// The `merge_method` name in configs.
    var name: String { get }
    var summary: String { get }
    /// The method's own parameters; `CommonParameters.specs` are added to them.
    var parameters: [ParameterSpec] { get }
    var needsBase: Bool { get }
    /// Statistics each model must send, given validated parameters.
    func requiredStatistics(_ parameters: MergeParameters) -> Set<StatisticKind>
    /// Makes an empty accumulator; `base` is the pretrained model (required when `needsBase`).
    func makeAccumulator(validated parameters: MergeParameters, base: NamedTensors?) throws -> any MergeAccumulator
    /// The most models one merge may fold in with these parameters (nil: no bound). Only a
    /// method whose memory grows with every model (MaTS kfac) has one.
    func maxModels(_ parameters: MergeParameters) -> Int?
}

extension MergeMethod {
    public func maxModels(_ parameters: MergeParameters) -> Int? { nil }

    /// Every parameter the method accepts, its own first.
    public var allParameters: [ParameterSpec] { parameters + CommonParameters.specs }

    public func validate(parameters raw: [String: MergeValue]) throws -> MergeParameters {
        try MergeParameters(validating: raw, specs: allParameters, method: name)
    }

    /// Validates `parameters` and makes an empty accumulator.
    public func makeAccumulator(parameters raw: [String: MergeValue], base: NamedTensors? = nil) throws -> any MergeAccumulator {
        let parameters = try validate(parameters: raw)
        if needsBase && base == nil { throw MergeError.baseModelRequired(method: name) }
        return try makeAccumulator(validated: parameters, base: base)
    }

    /// All-in-memory convenience: folds `models` in order and finishes.
    public func merge(models: [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)],
                      parameters: [String: MergeValue], base: NamedTensors? = nil) throws -> MergeResult {
        let accumulator = try makeAccumulator(parameters: parameters, base: base)
        for m in models { try accumulator.add(model: m.tensors, statistics: m.statistics, weight: m.weight, name: m.name) }
        return try accumulator.finish()
    }
}

/// Running sums of one merge. Not thread-safe: one caller folds models in sequence.
public protocol MergeAccumulator: AnyObject {
    /// Folds one model in. `name` labels errors and, with `heads: keep`, that model's head.
    func add(model: NamedTensors, statistics: NamedStatistics, weight: Double, name: String) throws
    /// Solves/normalises the sums into the merged tensors. Call once.
    func finish() throws -> MergeResult
}

extension MergeAccumulator {
    /// Folds one model in under the name `model<i>` (i = models added so far).
    public func add(model: NamedTensors, statistics: NamedStatistics, weight: Double = 1) throws {
        try add(model: model, statistics: statistics, weight: weight, name: "")
    }
}

public struct MergeResult: Sendable {
    public var tensors: NamedTensors
    public var report: MergeReport
}

/// The methods `merge_method` can name, in the order help lists them.
public enum MethodRegistry {
    public static let methods: [any MergeMethod] = [
        Average(),
        FisherMerge(),
        RegMean(),
        TaskArithmetic(),
        Ties(),
        MaTS(),
    ]

    public static var names: [String] { methods.map(\.name) }

    public static func method(named name: String) throws -> any MergeMethod {
        guard let m = methods.first(where: { $0.name == name }) else { throw MergeError.unknownMethod(name: name, known: names) }
        return m
    }
}
