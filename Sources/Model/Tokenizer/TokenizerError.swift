// TokenizerError: what can be wrong with a WordPiece vocabulary file.

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case unreadableVocabulary(file: String, reason: String)
    case emptyVocabulary(file: String)
    case missingSpecialToken(file: String, token: String)

    public var description: String {
        switch self {
        case .unreadableVocabulary(let file, let reason):
            return "cannot read vocabulary file \(file): \(reason)"
        case .emptyVocabulary(let file):
            return "vocabulary file \(file) has no tokens"
        case .missingSpecialToken(let file, let token):
            return "vocabulary file \(file) lacks the special token \(token) (a BERT vocab.txt has [PAD], [UNK], [CLS], [SEP])"
        }
    }
}
