// Errors from reading and writing safetensors files; each names the file and, where it
// applies, the tensor at fault.

public enum SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    case cannotOpen(path: String, reason: String)
    case truncated(path: String, detail: String)
    case badHeader(path: String, detail: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case badTensor(path: String, tensor: String, detail: String)
    case overlapping(path: String, first: String, second: String)
    case missingTensor(path: String, tensor: String)
    case writeFailed(path: String, reason: String)
    case duplicateName(path: String, tensor: String)
    case noWeights(directory: String)
    case badShardIndex(path: String, detail: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .truncated(path, detail): return "\(path): truncated safetensors file: \(detail)"
        case let .badHeader(path, detail): return "\(path): malformed safetensors header: \(detail)"
        case let .unsupportedDType(path, tensor, dtype): return "\(path): tensor '\(tensor)' has unsupported dtype \(dtype) (supported: F32, F16, BF16, F64, I64, I32)"
        case let .badTensor(path, tensor, detail): return "\(path): tensor '\(tensor)': \(detail)"
        case let .overlapping(path, first, second): return "\(path): byte ranges of tensors '\(first)' and '\(second)' overlap"
        case let .missingTensor(path, tensor): return "\(path): no tensor named '\(tensor)'"
        case let .writeFailed(path, reason): return "\(path): write failed: \(reason)"
        case let .duplicateName(path, tensor): return "\(path): tensor name '\(tensor)' given twice"
        case let .noWeights(directory):
            return "\(directory): no model.safetensors (or model.safetensors.index.json) in this model directory"
        case let .badShardIndex(path, detail): return "\(path): \(detail)"
        }
    }
}
