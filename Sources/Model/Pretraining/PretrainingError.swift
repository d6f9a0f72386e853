// Errors of masked-language-model pretraining, each naming what is at fault.

public enum PretrainingError: Error, CustomStringConvertible, Equatable {
    case missingMaskToken
    case noText(files: [String])
    case unknownTextFormat(argument: String, format: String)

    public var description: String {
        switch self {
        case .missingMaskToken: return "the vocabulary has no [MASK] token, so tokens cannot be masked"
        case let .noText(files): return "no text to pretrain on in \(files.joined(separator: ", ")): every record was empty"
        case let .unknownTextFormat(argument, format):
            return "--text \(argument): format '\(format)' is not one of text, csv, jsonl, vader, trec, sms-spam, orange-tab"
        }
    }
}
