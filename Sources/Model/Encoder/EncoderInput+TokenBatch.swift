// Bridges the tokenizer's TokenBatch to the encoder's EncoderInput (same B×T layout).

extension EncoderInput {
    public init(_ batch: TokenBatch) {
        // Safe: TokenBatch guarantees B×T arrays.
        try! self.init(batchSize: batch.batchSize, sequenceLength: batch.sequenceLength, inputIDs: batch.inputIDs,
                       attentionMask: batch.attentionMask, tokenTypeIDs: batch.tokenTypeIDs)
    }
}
