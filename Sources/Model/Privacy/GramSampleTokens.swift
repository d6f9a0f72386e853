// GramSampleTokens: the token × position counts behind an agent's Grams — the examples
// StatisticsRun feeds its no-grad pass (the first gram_batches × batch_size of the seeded
// shuffle), encoded as it encodes them. The truth a self-audit scores its recovery against.

public struct GramSampleTokens: Sendable {
    /// (token, position) → occurrences.
    public var pairCounts: [PairKey: Int] = [:]
    /// token → occurrences.
    public var tokenCounts: [Int32: Int] = [:]
    public var rows = 0
    public var examples = 0

    public struct PairKey: Hashable, Sendable {
        public var token: Int32
        public var position: Int
        public init(token: Int32, position: Int) { self.token = token; self.position = position }
    }

    public init(texts: [String], tokenizer: WordPieceTokenizer, maxLength: Int) {
        for text in texts {
            for (t, id) in tokenizer.encode(text, maxLength: maxLength).enumerated() {
                pairCounts[PairKey(token: id, position: t), default: 0] += 1
                tokenCounts[id, default: 0] += 1
                rows += 1
            }
            examples += 1
        }
    }

    /// The Gram sample of `plan` over `data`, exactly as StatisticsRun.collect chooses it.
    public init(data: LabeledDataset, tokenizer: WordPieceTokenizer, plan: StatisticsPlan) {
        let examples = data.shuffled(seed: plan.seed).examples
        let batches = min(plan.gramBatches, (examples.count + plan.batchSize - 1) / plan.batchSize)
        let used = examples.prefix(min(batches * plan.batchSize, examples.count))
        self.init(texts: used.map(\.text), tokenizer: tokenizer, maxLength: plan.maxLength)
    }
}
