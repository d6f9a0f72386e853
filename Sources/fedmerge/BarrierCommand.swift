// `fedmerge barrier A B --data FILE --out DIR`: the loss of θ(λ) = λθ_A + (1−λ)θ_B along λ and
// its barrier, written as DIR/barrier.csv and DIR/barrier.svg: classifier cross-entropy, or the
// masked-LM loss when both models carry BertForMaskedLM's head.

import Alignment
import ArgumentParser
import AtomicIO
import Foundation
import Model

struct BarrierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "barrier",
        abstract: "Loss along the straight line between two classifiers, and its barrier (are they in one basin?).",
        discussion: """
        For λ = 0, 1/(n−1), …, 1 the weights θ(λ) = λθ_A + (1−λ)θ_B are scored on the labelled \
        --data (CSV or JSONL, label names as the models' id2label): mean cross-entropy and accuracy. \
        barrier = max_λ L(θ(λ)) − ½(L(θ_A) + L(θ_B)); also printed: the largest rise above the \
        straight line between L(θ_B) and L(θ_A) (the barrier is the worse end's own excess when \
        the ends differ much). Align B to A first (`fedmerge align`) to \
        measure what alignment buys. Both models need the same architecture, labels and vocabulary.
        Two pretrained models (masked-LM head, `fedmerge pretrain`) are scored instead on the texts         of --data ([FORMAT:]PATH as pretrain --text reads): mean masked-LM cross-entropy per masked         token and top-1 accuracy, every λ under the same --seed'ed masking of sequences of --max-len.
        """
    )

    @Argument(help: "Model A (λ = 1).") var a: String
    @Argument(help: "Model B (λ = 0).") var b: String
    @Option(help: "Labelled data (CSV or JSONL); for masked-LM models, texts as [FORMAT:]PATH.") var data: String
    @Option(help: "Output directory for barrier.csv and barrier.svg.") var out: String
    @Option(help: "Number of λ values, ends included.") var points = 11
    @Option(help: "CSV column / JSONL field holding the text.") var textField = "text"
    @Option(help: "CSV column / JSONL field holding the label.") var labelField = "label"
    @Option(help: "Examples (masked-LM: sequences) used at most (the first ones of --data).") var maxExamples = 2000
    @Option(help: "Masking seed (masked-LM models).") var seed: UInt64 = 0
    @Option(help: "Maximum tokens per text (capped at max_position_embeddings).") var maxLen = 128
    @Option(help: "Texts per batch.") var batchSize = 32
    @Option(help: "Masked-LM models: sequences (the first ones) also scored by pseudo-perplexity, every token masked in turn (one forward row per token; 0 = off).")
    var pseudoPerplexitySequences = 20

    func validate() throws {
        guard points >= 2 else { throw ValidationError("--points must be ≥ 2 (both ends)") }
        guard pseudoPerplexitySequences >= 0 else { throw ValidationError("--pseudo-perplexity-sequences must be ≥ 0") }
        guard maxExamples >= 1, batchSize >= 1, maxLen >= 2 else { throw ValidationError("--max-examples, --batch-size must be ≥ 1 and --max-len ≥ 2") }
    }

    func run() throws {
        let modelA = try ModelDirectory.load(a), modelB = try ModelDirectory.load(b)
        try SameArchitecture.requireSameVocabulary(reference: a, model: b)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: a + "/vocab.txt")
        let curve: BarrierCurve
        if modelA.config.maskedLMHead && modelB.config.maskedLMHead {
            var corpus = PretrainingCorpus(texts: try TextSources.load([data], textField: textField), tokenizer: tokenizer,
                                           maxLength: min(maxLen, modelA.config.maxPositionEmbeddings))
            corpus.keepFirst(maxExamples)
            curve = try LossBarrier.maskedLMCurve(a: modelA, b: modelB, corpus: corpus, masking: try TokenMasking(tokenizer: tokenizer),
                                                  count: points, batchSize: batchSize, seed: seed,
                                                  pseudoPerplexitySequences: pseudoPerplexitySequences)
        } else {
            curve = try classifierCurve(modelA, modelB, tokenizer: tokenizer)
        }
        try write(curve)
    }

    private func classifierCurve(_ modelA: BertEncoder, _ modelB: BertEncoder, tokenizer: WordPieceTokenizer) throws -> BarrierCurve {
        var dataset = try LabeledDataset.load(path: data, textField: textField, labelField: labelField, labelNames: modelA.config.labels)
        dataset.examples = Array(dataset.examples.prefix(maxExamples))
        return try LossBarrier.curve(a: modelA, b: modelB, tokenizer: tokenizer, data: dataset, count: points,
                                     maxLength: maxLen, batchSize: batchSize)
    }

    private func write(_ curve: BarrierCurve) throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try AtomicFile.write(Data(curve.csv().utf8), to: out + "/barrier.csv")
        let title = (b as NSString).lastPathComponent + " → " + (a as NSString).lastPathComponent
        try AtomicFile.write(Data(curve.svg(title: title).utf8), to: out + "/barrier.svg")
        for p in curve.points {
            print(String(format: "λ=%.2f  loss %.6f  accuracy %.4f", p.lambda, p.loss, p.accuracy)
                  + (p.pseudoPerplexity.map { String(format: "  pseudo-perplexity %.2f", $0) } ?? ""))
        }
        if let b = curve.pseudoPerplexityBarrier { print(String(format: "pseudo-perplexity barrier %.3f", b)) }
        print(String(format: "%@ barrier %.6f nats (%.6f above the chord between the ends) on %d %@; wrote %@/barrier.csv and barrier.svg",
                     curve.objective.rawValue, curve.barrier, curve.excessOverChord, curve.examples,
                     curve.objective == .maskedLM ? "masked tokens" : "examples", out))
    }
}
