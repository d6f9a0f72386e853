// WordPieceTokenizer: BERT's WordPiece tokenizer (vocab.txt) — text to wordpieces, ids and padded batches.
//
// Each word from BertTextSplitter is cut greedily, longest match first, into vocabulary
// pieces; pieces after the first carry the "##" continuation prefix. A word with a part no
// piece matches, or longer than 100 scalars, becomes the single token [UNK]. Bracketed
// special-token names typed in the text ("[SEP]") are ordinary text here: they split into
// "[", "sep", "]", so user text cannot inject control tokens.

import Foundation

public struct WordPieceTokenizer: Sendable {
    /// Words longer than this (in Unicode scalars) become [UNK], as in BERT.
    public static let maxCharactersPerWord = 100
    static let continuationPrefix: [UInt8] = Array("##".utf8)  // UTF-8 of "##"

    public let lowercase: Bool
    public let padID: Int32
    public let clsID: Int32
    public let sepID: Int32
    public let unkID: Int32
    /// Vocabulary keyed by the UTF-8 bytes of each piece: exact code-point matching (a String
    /// key would match canonically equivalent spellings). Slices as keys let the greedy
    /// search look up parts of a word without copying them.
    private let idsByPiece: [ArraySlice<UInt8>: Int32]
    /// The "##" pieces keyed by the bytes after "##": continuations of a word.
    private let idsByContinuation: [ArraySlice<UInt8>: Int32]
    /// Line i of vocab.txt is the token with id i.
    private let tokensByID: [String]

    public var vocabularySize: Int { tokensByID.count }

    /// Loads a vocab.txt (one token per line; the line number is the id).
    public init(vocabularyFile: String, lowercase: Bool = true) throws {
        guard let data = FileManager.default.contents(atPath: vocabularyFile) else {
            throw TokenizerError.unreadableVocabulary(file: vocabularyFile, reason: "no such file or not readable")
        }
        try self.init(vocabularyData: data, file: vocabularyFile, lowercase: lowercase)
    }

    /// Tokens in id order; for tests and small vocabularies built in code.
    public init(tokens: [String], lowercase: Bool = true) throws {
        try self.init(vocabularyData: Data(tokens.joined(separator: "\n").utf8), file: "<in-memory vocabulary>",
                      lowercase: lowercase)
    }

    private init(vocabularyData data: Data, file: String, lowercase: Bool) throws {
        // Split on \n bytes (a String would treat \r\n as one Character); trailing
        // whitespace of each line is not part of the token.
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var tokens: [String] = []
        tokens.reserveCapacity(lines.count)
        var ids: [ArraySlice<UInt8>: Int32] = [:]
        ids.reserveCapacity(lines.count)
        var continuations: [ArraySlice<UInt8>: Int32] = [:]
        for (index, line) in lines.enumerated() {
            var scalars = String(decoding: line, as: UTF8.self).unicodeScalars[...]
            while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
            let token = String(String.UnicodeScalarView(scalars))
            tokens.append(token)
            let bytes = Array(token.utf8)
            ids[bytes[...]] = Int32(index)
            if bytes.starts(with: Self.continuationPrefix) { continuations[bytes.dropFirst(2)] = Int32(index) }
        }
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary(file: file) }
        func special(_ name: String) throws -> Int32 {
            guard let id = ids[Array(name.utf8)[...]] else { throw TokenizerError.missingSpecialToken(file: file, token: name) }
            return id
        }
        self.padID = try special("[PAD]")
        self.unkID = try special("[UNK]")
        self.clsID = try special("[CLS]")
        self.sepID = try special("[SEP]")
        self.lowercase = lowercase
        self.idsByPiece = ids
        self.idsByContinuation = continuations
        self.tokensByID = tokens
    }

    /// The vocabulary entry for an id; "[UNK]" for an id outside the vocabulary.
    public func token(for id: Int32) -> String {
        guard id >= 0, Int(id) < tokensByID.count else { return "[UNK]" }
        return tokensByID[Int(id)]
    }

    /// The id of a vocabulary entry, or nil.
    public func id(for token: String) -> Int32? { idsByPiece[Array(token.utf8)[...]] }

    /// Wordpieces of `text`, without [CLS]/[SEP].
    public func tokenize(_ text: String) -> [String] {
        pieceIDs(text).map { token(for: $0) }
    }

    /// [CLS] pieces [SEP], with the pieces cut so the whole fits in `maxLength` (≥ 2).
    public func encode(_ text: String, maxLength: Int) -> [Int32] {
        precondition(maxLength >= 2, "maxLength \(maxLength) leaves no room for [CLS] and [SEP]")
        let pieces = pieceIDs(text)
        var ids: [Int32] = [clsID]
        ids.reserveCapacity(min(pieces.count, maxLength - 2) + 2)
        ids.append(contentsOf: pieces.prefix(maxLength - 2))
        ids.append(sepID)
        return ids
    }

    /// Encodes each text (truncated to `maxLength`) and pads the rows to the longest one.
    public func batch(_ texts: [String], maxLength: Int) -> TokenBatch {
        TokenBatch(rows: texts.map { encode($0, maxLength: maxLength) }, padID: padID)
    }

    /// Ids of the wordpieces of `text`.
    func pieceIDs(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for word in BertTextSplitter.words(in: text, lowercase: lowercase) {
            appendPieces(of: word, to: &ids)
        }
        return ids
    }

    /// Greedy longest-match-first split of one word; the whole word is [UNK] if any part fails.
    private func appendPieces(of word: [Unicode.Scalar], to ids: inout [Int32]) {
        if word.count > Self.maxCharactersPerWord {
            ids.append(unkID)
            return
        }
        // UTF-8 bytes of the word and the byte offset where each scalar starts (plus the end).
        var bytes: [UInt8] = []
        var boundaries: [Int] = [0]
        for scalar in word {
            bytes.append(contentsOf: UTF8.encode(scalar)!)
            boundaries.append(bytes.count)
        }
        let firstNew = ids.count
        var start = 0
        while start < word.count {
            var end = word.count
            var match: Int32?
            let table = start > 0 ? idsByContinuation : idsByPiece
            while end > start {
                if let id = table[bytes[boundaries[start]..<boundaries[end]]] { match = id; break }
                end -= 1
            }
            guard let id = match else {
                ids.removeSubrange(firstNew...)
                ids.append(unkID)
                return
            }
            ids.append(id)
            start = end
        }
    }
}
