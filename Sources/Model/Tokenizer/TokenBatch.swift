// TokenBatch: a padded batch of token ids, the encoder's input.

/// B rows of T token ids each (row-major, T = the longest row, ≤ the requested max length),
/// padded with [PAD]. `attentionMask` is 1 for real tokens (including [CLS] and [SEP]) and 0
/// for padding; `tokenTypeIDs` are all 0 (single-segment input).
public struct TokenBatch: Sendable, Equatable {
    public let batchSize: Int
    public let sequenceLength: Int
    public var inputIDs: [Int32]       // B×T
    public var attentionMask: [Int32]  // B×T
    public var tokenTypeIDs: [Int32]   // B×T
    public var lengths: [Int]          // B: real tokens per row, [CLS] and [SEP] included

    public init(batchSize: Int, sequenceLength: Int, inputIDs: [Int32], attentionMask: [Int32],
                tokenTypeIDs: [Int32], lengths: [Int]) {
        precondition(inputIDs.count == batchSize * sequenceLength
                     && attentionMask.count == inputIDs.count && tokenTypeIDs.count == inputIDs.count
                     && lengths.count == batchSize, "TokenBatch arrays do not match \(batchSize)×\(sequenceLength)")
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.inputIDs = inputIDs
        self.attentionMask = attentionMask
        self.tokenTypeIDs = tokenTypeIDs
        self.lengths = lengths
    }

    /// Rows of id arrays, padded with `padID` to the longest row.
    public init(rows: [[Int32]], padID: Int32) {
        let batch = rows.count
        let length = rows.map(\.count).max() ?? 0
        var ids = [Int32](repeating: padID, count: batch * length)
        var mask = [Int32](repeating: 0, count: batch * length)
        for (b, row) in rows.enumerated() {
            for (t, id) in row.enumerated() {
                ids[b * length + t] = id
                mask[b * length + t] = 1
            }
        }
        self.init(batchSize: batch, sequenceLength: length, inputIDs: ids, attentionMask: mask,
                  tokenTypeIDs: [Int32](repeating: 0, count: batch * length), lengths: rows.map(\.count))
    }
}
