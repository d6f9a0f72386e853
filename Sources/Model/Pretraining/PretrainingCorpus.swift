// PretrainingCorpus: unlabelled texts as the token sequences pretraining reads — each text's
// wordpieces cut into consecutive pieces of at most maxLength − 2, each wrapped in [CLS] … [SEP],
// so a long newsgroup post becomes several sequences instead of losing all but its start.

public struct PretrainingCorpus: Sendable {
    /// [CLS] pieces [SEP] rows, in text order.
    public private(set) var sequences: [[Int32]]
    public let padID: Int32

    public init(texts: [String], tokenizer: WordPieceTokenizer, maxLength: Int) {
        precondition(maxLength >= 3, "maxLength \(maxLength) leaves no room for a piece between [CLS] and [SEP]")
        padID = tokenizer.padID
        sequences = []
        for text in texts {
            let pieces = tokenizer.pieceIDs(text)
            for start in stride(from: 0, to: pieces.count, by: maxLength - 2) {
                sequences.append([tokenizer.clsID] + pieces[start..<min(start + maxLength - 2, pieces.count)] + [tokenizer.sepID])
            }
        }
    }

    public var count: Int { sequences.count }
    public var tokens: Int { sequences.reduce(0) { $0 + $1.count } }

    /// Keeps only the first n sequences.
    public mutating func keepFirst(_ n: Int) { sequences = Array(sequences.prefix(n)) }

    /// The last `fraction` of the sequences (at least 1 and at most `limit`) split off for
    /// held-out scoring; they are removed from this corpus.
    public mutating func holdOut(fraction: Double, limit: Int) -> PretrainingCorpus {
        let n = min(max(1, Int(Double(count) * fraction)), limit, max(count - 1, 0))
        var held = self
        held.sequences = Array(sequences.suffix(n))
        sequences.removeLast(n)
        return held
    }

    /// Sequences `indices` as one padded batch.
    public func batch(_ indices: some Collection<Int>) -> EncoderInput {
        EncoderInput(TokenBatch(rows: indices.map { sequences[$0] }, padID: padID))
    }
}
