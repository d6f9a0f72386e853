// Options shared by the commands that run a model over a file of texts (predict, evaluate):
// the input's format and text field, and the batch plan that bounds their memory.

import ArgumentParser
import Console
import Foundation
import Model

extension TextFormat: ExpressibleByArgument {}
extension FisherLabels: ExpressibleByArgument {}

struct TextFileArguments: ParsableArguments {
    @Option(help: "Input layout: text (one per line), csv (header row), jsonl (one object per line). Default: from the extension; stdin is text.")
    var format: TextFormat?
    @Option(help: "CSV column / JSONL field holding the text.") var textField = "text"
    @Option(help: "Maximum tokens per text, [CLS] and [SEP] included (capped at max_position_embeddings); longer texts are truncated.")
    var maxLen = 512
    @Option(help: "Most texts per batch.") var batchSize = 32
    @Option(help: "Most padded tokens (texts × longest text) per batch.") var batchTokens = 8192
    @Option(help: "Texts read ahead and sorted by length before batching.") var window = 4096
    @Option(help: "Batches run at once, each on its own thread with one BLAS thread, sharing the weights and --batch-tokens (default: the BLAS thread count, i.e. OPENBLAS_NUM_THREADS or the cores).")
    var workers: Int?

    /// The memory statement both commands' --help carry.
    static let memoryDiscussion = """
        Texts are read --window at a time, sorted by length, and run in batches of at most \
        --batch-size texts; --workers batches run at once, together at most --batch-tokens padded \
        tokens; each encoder's layers share one set of activation buffers. Peak memory is at most \
        128 MiB + 2 × the weights file + 4 bytes × (batch-tokens × (12·hidden + 2·intermediate + 12 \
        + heads·max-len) + window × (max-len + 8 + labels) + workers × batch-size × (4·hidden + \
        3·labels)), plus the longest input record, whatever the number of texts: about 740 MiB \
        for all-MiniLM-L6-v2 at the defaults.
        """

    func validate() throws {
        guard maxLen >= 2 else { throw ValidationError("--max-len must be ≥ 2") }
        guard batchSize >= 1, window >= 1 else { throw ValidationError("--batch-size and --window must be ≥ 1") }
        guard batchTokens >= maxLen else { throw ValidationError("--batch-tokens must be ≥ --max-len, so one text always fits") }
        if let workers, !(1...64).contains(workers) { throw ValidationError("--workers must be in 1…64, not \(workers)") }
    }

    var plan: BatchPlan { BatchPlan(maxLength: maxLen, batchSize: batchSize, batchTokens: batchTokens, window: window, workers: workers) }

    /// A progress bar over `path`'s records, only when stderr is a terminal and the input a
    /// regular file (its lines are counted first; stdin cannot be).
    func progressBar(for path: String, label: String) -> ProgressBarHandle {
        guard isatty(2) == 1, path != "-", let handle = FileHandle(forReadingAtPath: path) else { return ProgressBarHandle(bar: nil) }
        defer { try? handle.close() }
        var lines = 0
        while let block = try? handle.read(upToCount: 1 << 20), !block.isEmpty {
            lines += block.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        }
        let records = (format ?? TextFormat(path: path)) == .csv ? max(lines - 1, 1) : max(lines, 1)
        return ProgressBarHandle(bar: ProgressBar(total: records, label: label, unit: .steps))
    }
}

/// A progress bar that may be absent (not a terminal), fed batch by batch.
struct ProgressBarHandle {
    let bar: ProgressBar?
    init(bar: ProgressBar?) { self.bar = bar }
    func advance(_ n: Int) { bar?.advance(by: n) }
    func finish() { bar?.finish() }
}
