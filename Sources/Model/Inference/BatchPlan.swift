// BatchPlan: how inference cuts a stream of texts into batches — a window of texts read ahead
// and sorted by length, batches of at most `batchSize` texts and `batchTokens` padded tokens
// shared by `workers` concurrent encoders — and the memory that bounds, whatever the length of
// the input.

import LinAlg

public struct BatchPlan: Sendable, Equatable {
    /// Tokens per text, [CLS] and [SEP] included; longer texts are truncated.
    public var maxLength: Int
    public var batchSize = 32
    /// Padded tokens (texts × longest text) per batch: what the activations scale with.
    public var batchTokens = 8192
    /// Texts read ahead and sorted by length, so a batch pads to similar lengths.
    public var window = 4096
    /// Batches run at once, each on its own thread with one BLAS thread (the encoders share the
    /// weights); `batchTokens` is split between them. Default: the BLAS thread count.
    public var workers: Int

    public init(maxLength: Int, batchSize: Int = 32, batchTokens: Int = 8192, window: Int = 4096, workers: Int? = nil) {
        self.maxLength = maxLength
        self.batchSize = batchSize
        self.batchTokens = batchTokens
        self.window = window
        self.workers = max(1, workers ?? BLAS.threads)
    }

    /// Padded tokens one worker's batch may hold.
    public var tokensPerWorker: Int { max(1, batchTokens / workers) }

    /// Bytes of every buffer an inference pass of `config` holds under this plan, model weights
    /// excluded: one layer's forward activations (no backward: layers share them) per padded
    /// token of all workers' batches, attention probabilities (B·H·T² ≤ tokens·H·maxLength), the
    /// heads' (B, ·) rows, and the window's token ids and logits. The stated bound is
    /// `runtimeBytes + 2 × weightBytes + activationBytes`.
    public func activationBytes(_ config: BertConfig) -> Int {
        let (c, i, h, k) = (config.hiddenSize, config.intermediateSize, config.numAttentionHeads, max(config.numLabels, 1))
        let rows = min(batchTokens, workers * batchSize * maxLength)
        // embSum, embOut (2C) + per layer q, k, v, ctx, attnOut, resid1, h1, ffnOut, resid2, out
        // (10C) + ffnPre, ffnAct (2I) + six LayerNorm statistics; the input's ids, mask, types
        // twice (TokenBatch and EncoderInput).
        let perToken = 12 * c + 2 * i + 6 + 6
        let probabilities = rows * h * maxLength
        let head = workers * batchSize * (4 * c + 3 * k)
        // A window keeps each text's ids (≤ maxLength, plus an array header) and its logits.
        let window = self.window * (maxLength + 8 + k)
        return 4 * (rows * perToken + probabilities + head + window)
    }

    /// What the process needs besides the model and the plan's buffers: the Swift runtime,
    /// Foundation, OpenBLAS's per-thread buffers, the tokenizer and output buffers (measured
    /// at 40–60 MiB on x86-64 Linux; stated with headroom).
    public static let runtimeBytes = 128 << 20

    /// The peak-memory bound of an inference run over a model whose weights file has
    /// `weightBytes` bytes: the loader maps the file and copies it into fp32 parameters.
    public func peakBytes(_ config: BertConfig, weightBytes: Int) -> Int {
        Self.runtimeBytes + 2 * weightBytes + activationBytes(config)
    }
}
