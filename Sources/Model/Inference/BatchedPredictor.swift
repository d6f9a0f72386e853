// BatchedPredictor: a classifier's logits over a stream of texts of any length, with memory
// bounded by the BatchPlan, not the input: it reads one window of texts, tokenizes them, runs
// them in length-sorted batches, and hands back each text's logits in input order. `predict`,
// `evaluate`, the agents' EVAL and the experiment runner's scorer all run models through it.

import Foundation
import LinAlg

public final class BatchedPredictor {
    public let model: BertEncoder
    public let tokenizer: WordPieceTokenizer
    public let plan: BatchPlan
    /// `model` and `plan.workers − 1` encoders sharing its weights, one per concurrent batch.
    private let encoders: [BertEncoder]

    public init(model: BertEncoder, tokenizer: WordPieceTokenizer, plan: BatchPlan) throws {
        guard model.config.numLabels > 0 else { throw EncoderError.noClassifier }
        precondition(plan.maxLength >= 2 && plan.batchSize >= 1 && plan.window >= 1 && plan.workers >= 1, "invalid batch plan \(plan)")
        var plan = plan
        plan.maxLength = min(plan.maxLength, model.config.maxPositionEmbeddings)
        // Every worker's share of batchTokens must hold one text of maxLength.
        plan.workers = max(1, min(plan.workers, plan.batchTokens / plan.maxLength))
        self.model = model
        self.tokenizer = tokenizer
        self.plan = plan
        encoders = [model] + (1..<plan.workers).map { _ in BertEncoder(sharingParametersOf: model) }
    }

    /// Pulls `(item, text)` pairs from `next` until it returns nil and calls `emit(item, logits)`
    /// once per pair, in the order they were pulled. Only the items (not the texts) of one
    /// window are held at a time; `progress` hears how many texts each batch finished (with
    /// several workers from their threads, one call at a time).
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
            var batches: [ArraySlice<Int>] = []
            var start = 0
            while start < order.count {
                // Lengths only grow along `order`, so the candidate's length is the batch's T.
                var end = start + 1
                while end < order.count, end - start < plan.batchSize,
                      (end - start + 1) * ids[order[end]].count <= plan.tokensPerWorker { end += 1 }
                batches.append(order[start..<end])
                start = end
            }
            try logits.withUnsafeMutableBufferPointer { out in
                try runBatches(batches, ids: ids, labels: k, into: out.baseAddress!, progress: progress)
            }
            for (i, item) in items.enumerated() { try emit(item, logits[(i * k)..<((i + 1) * k)]) }
        }
    }

    /// Runs every batch, writing text i's logits to out[i·k ..< (i+1)·k]: in turn on `model`, or
    /// with several encoders each taking the next batch not yet started, on its own thread with
    /// one BLAS thread (two threads on small per-batch gemms left much of the second core idle).
    /// Longest batch first: each encoder sizes its buffers once (shortest first regrew them for
    /// nearly every batch), and the short batches left at the end even out the workers.
    private func runBatches(_ batches: [ArraySlice<Int>], ids: [[Int32]], labels k: Int,
                            into out: UnsafeMutablePointer<Float>, progress: (Int) -> Void) throws {
        func run(_ encoder: BertEncoder, _ batch: ArraySlice<Int>) throws {
            try encoder.forwardLogits(EncoderInput(TokenBatch(rows: batch.map { ids[$0] }, padID: tokenizer.padID)))
            encoder.withLogits { rows in
                for (b, i) in batch.enumerated() { (out + i * k).update(from: rows + b * k, count: k) }
            }
        }
        let workers = min(encoders.count, batches.count)
        guard workers > 1 else {
            for batch in batches.reversed() {
                try run(model, batch)
                progress(batch.count)
            }
            return
        }
        try withoutActuallyEscaping(progress) { progress in
            let shared = SharedBatches(count: batches.count, progress: progress)
            // Each batch writes only its own texts' rows of `out`; the weights are read-only.
            BLAS.concurrentPerform(iterations: workers) { w in
                while let taken = shared.take() {
                    let j = batches.count - 1 - taken
                    do {
                        try run(self.encoders[w], batches[j])
                        shared.finished(batches[j].count)
                    } catch {
                        shared.fail(error)
                    }
                }
            }
            if let error = shared.error { throw error }
        }
    }

    /// The batch counter, the first error (no new batch starts after it) and the progress
    /// calls, behind one lock.
    private final class SharedBatches: @unchecked Sendable {
        private let lock = NSLock()
        private var nextIndex = 0
        private let count: Int
        private let progress: (Int) -> Void
        private(set) var error: Error?
        init(count: Int, progress: @escaping (Int) -> Void) { self.count = count; self.progress = progress }

        func take() -> Int? {
            lock.withLock {
                guard error == nil, nextIndex < count else { return nil }
                defer { nextIndex += 1 }
                return nextIndex
            }
        }
        func finished(_ texts: Int) { lock.withLock { progress(texts) } }
        func fail(_ e: Error) { lock.withLock { if error == nil { error = e } } }
    }
}
