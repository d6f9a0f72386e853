// Errors of the encoder, its configuration and its model directory, each naming what is at fault.

public enum EncoderError: Error, CustomStringConvertible, Equatable {
    case unreadableConfig(path: String, reason: String)
    case missingConfigField(path: String, field: String)
    case unsupportedConfig(path: String, field: String, value: String)
    case missingTensor(file: String, tensor: String)
    case tensorShapeMismatch(file: String, tensor: String, expected: [Int], actual: [Int])
    case tokenOutOfRange(what: String, value: Int32, limit: Int)
    case sequenceTooLong(length: Int, maxPositions: Int)
    case inputShapeMismatch(what: String, expected: Int, actual: Int)
    case noClassifier
    case noMaskedLMHead
    case labelOutOfRange(label: Int, numLabels: Int)
    case missingFile(path: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadableConfig(path, reason): return "\(path): cannot read model config: \(reason)"
        case let .missingConfigField(path, field): return "\(path): required field '\(field)' is missing or has the wrong type"
        case let .unsupportedConfig(path, field, value): return "\(path): \(field) = \(value) is not supported (BERT with absolute positions and erf GELU only)"
        case let .missingTensor(file, tensor): return "\(file): tensor '\(tensor)' is missing"
        case let .tensorShapeMismatch(file, tensor, expected, actual): return "\(file): tensor '\(tensor)' has shape \(actual), the config needs \(expected)"
        case let .tokenOutOfRange(what, value, limit): return "\(what) \(value) is outside 0..<\(limit)"
        case let .sequenceTooLong(length, maxPositions): return "sequence length \(length) exceeds max_position_embeddings \(maxPositions)"
        case let .inputShapeMismatch(what, expected, actual): return "\(what): expected \(expected) values, got \(actual)"
        case .noMaskedLMHead: return "the model has no masked-LM head (config.json does not declare BertForMaskedLM); pretrain it with `fedmerge pretrain`"
        case .noClassifier: return "the model has no classification head (num_labels is not set); fine-tune it first"
        case let .labelOutOfRange(label, numLabels): return "label \(label) is outside 0..<\(numLabels)"
        case let .missingFile(path): return "\(path): file not found"
        case let .writeFailed(path, reason): return "\(path): write failed: \(reason)"
        }
    }
}
