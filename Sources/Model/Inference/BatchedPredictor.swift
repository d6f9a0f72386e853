// BatchedPredictor: a classifier's logits over a stream of texts of any length, with memory
// bounded by the BatchPlan, not the input: it reads one window of texts, tokenizes them, runs
// them in length-sorted batches, and hands back each text's logits in input order. `predict`,
// `evaluate`, the agents' EVAL and the experiment runner's scorer all run models through it.

public final class BatchedPredictor {
    public let model: BertEncoder
    public let tokenizer: WordPieceTokenizer
    public let plan: BatchPlan

    public init(model: BertEncoder, tokenizer: WordPieceTokenizer, plan: BatchPlan) throws {
        guard model.config.numLabels > 0 else { throw EncoderError.noClassifier }
        precondition(plan.maxLength >= 2 && plan.batchSize >= 1 && plan.window >= 1, "invalid batch plan \(plan)")
        var plan = plan
        plan.maxLength = min(plan.maxLength, model.config.maxPositionEmbeddings)
        self.model = model
        self.tokenizer = tokenizer
        self.plan = plan
    }

    /// Pulls `(item, text)` pairs from `next` until it returns nil and calls `emit(item, logits)`
    /// once per pair, in the order they were pulled. Only the items (not the texts) of one
    /// window are held at a time; `progress` hears how many texts each batch finished.
    public func run<Item>(next: () throws -> (Item, String)?, progress: (Int) -> Void = { _ in },
                          emit: (Item, ArraySlice<Float>) throws -> Void) throws {
        let k = model.config.numLabels
        var items: [Item] = [], ids: [[Int32]] = []
        items.reserveCapacity(plan.window)
        ids.reserveCapacity(plan.window)
        var logits = [Float](repeating: 0, count: plan.window * k)
        var exhausted = false
        while !exhausted {
            items.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            while items.count < plan.window {
                guard let (item, text) = try next() else { exhausted = true; break }
                items.append(item)
                ids.append(tokenizer.encode(text, maxLength: plan.maxLength))
            }
            // Shortest first (ties in input order), so each batch pads to nearly its own length.
            let order = ids.indices.sorted { (ids[$0].count, $0) < (ids[$1].count, $1) }
            var start = 0
            while start < order.count {
                // Lengths only grow along `order`, so the candidate's length is the batch's T.
                var end = start + 1
                while end < order.count, end - start < plan.batchSize,
                      (end - start + 1) * ids[order[end]].count <= plan.batchTokens { end += 1 }
                let batch = order[start..<end]
                try model.forward(EncoderInput(TokenBatch(rows: batch.map { ids[$0] }, padID: tokenizer.padID)))
                model.withLogits { rows in
                    for (b, i) in batch.enumerated() {
                        for j in 0..<k { logits[i * k + j] = rows[b * k + j] }
                    }
                }
                progress(batch.count)
                start = end
            }
            for (i, item) in items.enumerated() { try emit(item, logits[(i * k)..<((i + 1) * k)]) }
        }
    }
}
