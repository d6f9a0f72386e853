// The errors the merge arithmetic and its configuration throw; every case carries the
// model, tensor, key or sizes at fault so the message says what to fix.

public enum MergeError: Error, CustomStringConvertible, Equatable, Sendable {
    case unknownMethod(name: String, known: [String])
    case unknownParameter(method: String, key: String, known: [String])
    case missingParameter(method: String, key: String)
    case badParameter(key: String, value: String, expected: String)
    case baseModelRequired(method: String)
    case noModels(method: String)
    case duplicateTensor(tensor: String)
    case duplicateModelName(name: String)
    /// A model lacks a tensor the first model had (or has one the first did not).
    case missingTensor(model: String, tensor: String)
    case unexpectedTensor(model: String, tensor: String)
    case shapeMismatch(model: String, tensor: String, expected: [Int], actual: [Int])
    case nonFinite(model: String, tensor: String)
    /// A statistic the method needs is absent (`key` is the stats tensor or metadata key).
    case missingStatistic(model: String, key: String)
    case badMetadata(model: String, key: String, value: String)
    case badWeight(model: String, weight: Double)
    case solveFailed(tensor: String, reason: String)
    /// A method whose memory grows with every model was given more than its `max_models`.
    case tooManyModels(method: String, model: String, limit: Int, reason: String)
    case finishedTwice
    /// A merge on sums (secure summation) asked of a method that needs per-model terms.
    case notSummable(method: String, summable: [String])
    /// Sums that do not fit the layout they claim (`what` names the summand or tensor).
    case summandMismatch(what: String, expected: String, actual: String)

    public var description: String {
        switch self {
        case let .unknownMethod(name, known):
            return "unknown merge_method '\(name)'; known methods: \(known.joined(separator: ", "))"
        case let .unknownParameter(method, key, known):
            return "merge_method \(method) has no parameter '\(key)'; its parameters: \(known.joined(separator: ", "))"
        case let .missingParameter(method, key):
            return "merge_method \(method) needs parameter '\(key)'"
        case let .badParameter(key, value, expected):
            return "parameter '\(key)' = \(value): expected \(expected)"
        case let .baseModelRequired(method):
            return "merge_method \(method) needs base_model (the pretrained model the task vectors start from)"
        case let .noModels(method):
            return "merge_method \(method): no models were added"
        case let .duplicateTensor(tensor):
            return "tensor '\(tensor)' appears twice"
        case let .duplicateModelName(name):
            return "two models are named '\(name)'; give them distinct `name:` keys"
        case let .missingTensor(model, tensor):
            return "model \(model) has no tensor '\(tensor)' (the first model has it)"
        case let .unexpectedTensor(model, tensor):
            return "model \(model) has tensor '\(tensor)' that the first model does not"
        case let .shapeMismatch(model, tensor, expected, actual):
            return "tensor '\(tensor)' in model \(model) has shape \(Self.format(actual)), expected \(Self.format(expected))"
        case let .nonFinite(model, tensor):
            return "tensor '\(tensor)' in model \(model) contains NaN or infinity"
        case let .missingStatistic(model, key):
            return "statistics of model \(model) lack '\(key)'"
        case let .badMetadata(model, key, value):
            return "statistics metadata '\(key)' of model \(model) is malformed: \(value.prefix(80))"
        case let .badWeight(model, weight):
            return "model \(model) has weight \(weight); weights must be finite and > 0"
        case let .solveFailed(tensor, reason):
            return "solve for tensor '\(tensor)' failed: \(reason)"
        case let .tooManyModels(method, model, limit, reason):
            return "merge_method \(method): model \(model) would be model \(limit + 1), over max_models \(limit) (\(reason))"
        case .finishedTwice:
            return "finish() was called twice on one accumulator"
        case let .notSummable(method, summable):
            return "merge_method \(method) needs each model's own terms and cannot run on sums (secure: true); methods that can: \(summable.joined(separator: ", "))"
        case let .summandMismatch(what, expected, actual):
            return "sums for \(what): expected \(expected), got \(actual)"
        }
    }

    /// The same error with an empty model name filled in (statistics accessors do not know it).
    func naming(model: String) -> MergeError {
        switch self {
        case let .missingStatistic(m, key) where m.isEmpty: return .missingStatistic(model: model, key: key)
        case let .badMetadata(m, key, value) where m.isEmpty: return .badMetadata(model: model, key: key, value: value)
        default: return self
        }
    }

    static func format(_ shape: [Int]) -> String { "(" + shape.map(String.init).joined(separator: "×") + ")" }
}

/// Runs `body`, filling the model name into statistics errors it throws.
func naming<R>(model: String, _ body: () throws -> R) throws -> R {
    do { return try body() } catch let error as MergeError { throw error.naming(model: model) }
}
