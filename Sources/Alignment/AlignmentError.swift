// The errors alignment throws; each case names the tensor, statistic, point or value at fault.

public enum AlignmentError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A parameter name no rule of BertPermutation covers (a tensor from another architecture).
    case unknownParameter(name: String)
    /// A statistic whose name says neither which linear nor which parameter it belongs to.
    case unknownStatistic(name: String)
    /// A permutation of the wrong length or with a repeated or out-of-range entry.
    case invalidPermutation(what: String, reason: String)
    /// A tensor whose shape does not match its permutation's lengths.
    case shapeMismatch(tensor: String, expected: [Int], actual: [Int])
    /// The two models cannot be aligned unit for unit.
    case architectureMismatch(field: String, reference: Int, model: Int)
    /// Two classifiers whose label names differ: their heads do not mean the same thing.
    case labelsMismatch(reference: [String], model: [String])
    /// The two models' vocab.txt differ: the same id would be a different token in each.
    case vocabularyMismatch(reference: String, model: String)
    /// No token reached the correlation (empty data file, or every text empty).
    case noActivations(path: String)

    public var description: String {
        switch self {
        case let .unknownParameter(name):
            return "parameter \(name) is not part of a BERT encoder this alignment knows how to permute"
        case let .unknownStatistic(name):
            return "statistic \(name) does not belong to a known linear or parameter, so it cannot be permuted"
        case let .invalidPermutation(what, reason):
            return "\(what) is not a permutation: \(reason)"
        case let .shapeMismatch(tensor, expected, actual):
            return "\(tensor): shape \(actual) does not fit the permutation, expected \(expected)"
        case let .architectureMismatch(field, reference, model):
            return "the models differ in \(field): reference \(reference), model \(model); alignment needs the same architecture"
        case let .labelsMismatch(reference, model):
            return "the classifiers' labels differ: reference \(reference), model \(model); interpolating their heads would mix different labels"
        case let .vocabularyMismatch(reference, model):
            return "\(reference) and \(model) differ: alignment runs both models on the same token ids, so they need one vocabulary"
        case let .noActivations(path):
            return "\(path): no tokens to correlate (no non-empty text)"
        }
    }
}
