// `fedmerge stats`: collect the merge statistics of a fine-tuned model on the agent's data
// (Grams, optional diagonal Fisher and K-FAC output factors) into stats.safetensors.

import ArgumentParser
import Foundation
import LinAlg
import Model

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write stats.safetensors: Gram matrices (RegMean), and optionally Fisher diagonals and K-FAC output factors.",
        discussion: """
        Names follow the model's saved tensors (DESIGN.md §3): `<linear>.gram` (Σ x xᵀ over non-padding tokens) with `.gram.num_rows` / `.gram.same_as` metadata, `<param>.fisher`, `<linear>.kfac_out`, and `train.label_counts`.

        The Gram batches run --workers at a time, each on its own thread with one BLAS thread and its own activation buffers and fp64 sums (≈ 300 MB per worker for MiniLM-L6 at the defaults). Worker w takes batches w, w + workers, …, and the sums are added in worker order: the same run gives the same file; another worker count changes the Grams only by fp32 rounding (≈ 1e-7 relative).
        """
    )

    @Option(help: "Fine-tuned model directory.") var model: String
    @Option(help: "The agent's training data.") var data: String
    @Option(help: "Output file.") var out: String
    @OptionGroup var dataOptions: DataArguments
    @Option(help: "No-grad forward batches for the Grams (0 skips them).") var gramBatches = 16
    @Option(help: "Examples for the diagonal Fisher (0 skips it).") var fisherExamples = 0
    @Option(help: "Labels the Fisher averages over: \(FisherLabels.help).") var fisherLabels: FisherLabels = .exact
    @Option(help: "Examples for the K-FAC output factors (0 skips them).") var kfacExamples = 0
    @Option(help: "Examples per Gram batch.") var batchSize = 16
    @Option(help: "Gram batches run at once (default: the BLAS thread count, i.e. OPENBLAS_NUM_THREADS or the cores).") var workers: Int?
    @Option(help: "Maximum tokens per text.") var maxLen = 128
    @Option(help: "Seed for the example order and label sampling.") var seed: UInt64 = 42
    @Option(help: "Differentially private Grams at this ε (clip rows, Gaussian noise on the sums, PSD projection).")
    var gramNoiseEpsilon: Double?
    @Option(help: "δ of the private Grams.") var gramNoiseDelta = 1e-5
    @Option(help: "Row bound of the private Grams, as an RMS per input coordinate (‖x‖ ≤ clip·√d).") var gramNoiseClip = 1.0
    @Option(help: "Seed of the Gram noise (reproducible experiments only; default: the system's generator).")
    var gramNoiseSeed: UInt64?

    func validate() throws {
        guard gramBatches >= 0, fisherExamples >= 0, kfacExamples >= 0, batchSize >= 1, maxLen >= 2 else {
            throw ValidationError("counts must be ≥ 0, --batch-size ≥ 1 and --max-len ≥ 2")
        }
        if let e = gramNoiseEpsilon, !(e > 0 && gramNoiseDelta > 0 && gramNoiseDelta < 1 && gramNoiseClip > 0) {
            throw ValidationError("--gram-noise-epsilon \(e): ε and --gram-noise-clip must be > 0 and --gram-noise-delta in (0, 1)")
        }
        guard gramBatches + fisherExamples + kfacExamples > 0 else { throw ValidationError("nothing to collect: all counts are 0") }
        if let w = workers, w < 1 { throw ValidationError("--workers \(w): must be ≥ 1") }
    }

    func run() throws {
        let encoder = try ModelDirectory.load(model)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: model + "/vocab.txt")
        let dataset = try dataOptions.load(data, labelNames: encoder.config.labels.isEmpty ? nil : encoder.config.labels)
        var plan = StatisticsPlan()
        plan.gramBatches = gramBatches; plan.batchSize = batchSize; plan.maxLength = maxLen
        plan.fisherExamples = fisherExamples; plan.kfacExamples = kfacExamples; plan.seed = seed
        plan.fisherLabels = fisherLabels
        plan.gramWorkers = workers ?? 0
        plan.gramNoise = gramNoiseEpsilon.map { GramNoiseSettings(epsilon: $0, delta: gramNoiseDelta, clip: gramNoiseClip, seed: gramNoiseSeed) }
        let start = DispatchTime.now().uptimeNanoseconds
        try StatisticsRun.write(model: encoder, tokenizer: tokenizer, data: dataset, plan: plan, to: out)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "wrote %@ (%d examples available; %d Gram batches, %d Fisher, %d K-FAC examples) in %.1f s",
                     out, dataset.count, gramBatches, fisherExamples, kfacExamples, seconds))
    }
}
