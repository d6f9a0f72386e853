// EncoderInput: one padded batch of token ids as the encoder consumes it (B×T, row-major).

public struct EncoderInput: Sendable, Equatable {
    public let batchSize: Int
    public let sequenceLength: Int
    public var inputIDs: [Int32]
    /// 1 for real tokens, 0 for padding.
    public var attentionMask: [Int32]
    public var tokenTypeIDs: [Int32]

    public init(batchSize: Int, sequenceLength: Int, inputIDs: [Int32], attentionMask: [Int32], tokenTypeIDs: [Int32]? = nil) throws {
        let n = batchSize * sequenceLength
        guard inputIDs.count == n else { throw EncoderError.inputShapeMismatch(what: "input_ids", expected: n, actual: inputIDs.count) }
        guard attentionMask.count == n else { throw EncoderError.inputShapeMismatch(what: "attention_mask", expected: n, actual: attentionMask.count) }
        let types = tokenTypeIDs ?? [Int32](repeating: 0, count: n)
        guard types.count == n else { throw EncoderError.inputShapeMismatch(what: "token_type_ids", expected: n, actual: types.count) }
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.inputIDs = inputIDs
        self.attentionMask = attentionMask
        self.tokenTypeIDs = types
    }

    /// Batch from unpadded id sequences: right-padded with `padID` to the longest one.
    public init(sequences: [[Int32]], padID: Int32 = 0) throws {
        let t = sequences.map(\.count).max() ?? 0
        var ids: [Int32] = [], mask: [Int32] = []
        for s in sequences {
            ids += s + [Int32](repeating: padID, count: t - s.count)
            mask += [Int32](repeating: 1, count: s.count) + [Int32](repeating: 0, count: t - s.count)
        }
        try self.init(batchSize: sequences.count, sequenceLength: t, inputIDs: ids, attentionMask: mask)
    }

    public var rows: Int { batchSize * sequenceLength }

    /// Non-padding token count of example b.
    public func length(of b: Int) -> Int {
        var n = 0
        for t in 0..<sequenceLength where attentionMask[b * sequenceLength + t] != 0 { n += 1 }
        return n
    }
}
