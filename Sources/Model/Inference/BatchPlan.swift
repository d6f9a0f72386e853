// BatchPlan: how inference cuts a stream of texts into batches — a window of texts read ahead
// and sorted by length, batches of at most `batchSize` texts and `batchTokens` padded tokens —
// and the memory that bounds, whatever the length of the input.

public struct BatchPlan: Sendable, Equatable {
    /// Tokens per text, [CLS] and [SEP] included; longer texts are truncated.
    public var maxLength: Int
    public var batchSize = 32
    /// Padded tokens (texts × longest text) per batch: what the activations scale with.
    public var batchTokens = 8192
    /// Texts read ahead and sorted by length, so a batch pads to similar lengths.
    public var window = 4096

    public init(maxLength: Int, batchSize: Int = 32, batchTokens: Int = 8192, window: Int = 4096) {
        self.maxLength = maxLength
        self.batchSize = batchSize
        self.batchTokens = batchTokens
        self.window = window
    }

    /// Bytes of every buffer an inference pass of `config` holds under this plan, model weights
    /// excluded: one layer's forward activations (no backward: layers share them) per padded
    /// token, attention probabilities (B·H·T² ≤ batchTokens·H·maxLength), the head's (B, ·) rows,
    /// and the window's token ids and logits. The stated bound is
    /// `runtimeBytes + 2 × weightBytes + activationBytes`.
    public func activationBytes(_ config: BertConfig) -> Int {
        let (c, i, h, k) = (config.hiddenSize, config.intermediateSize, config.numAttentionHeads, max(config.numLabels, 1))
        let rows = min(batchTokens, batchSize * maxLength)
        // embSum, embOut (2C) + per layer q, k, v, ctx, attnOut, resid1, h1, ffnOut, resid2, out
        // (10C) + ffnPre, ffnAct (2I) + six LayerNorm statistics; the input's ids, mask, types
        // twice (TokenBatch and EncoderInput).
        let perToken = 12 * c + 2 * i + 6 + 6
        let probabilities = rows * h * maxLength
        let head = batchSize * (4 * c + 3 * k)
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
