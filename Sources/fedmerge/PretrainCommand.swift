// `fedmerge pretrain`: masked-language-model pretraining of a small BERT from scratch with a
// given vocabulary, saved as a Hugging Face BertForMaskedLM directory that finetune, stats,
// align, barrier and merge read like any other model.

import ArgumentParser
import AtomicIO
import Foundation
import LinAlg
import Model

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pretrain a small BERT from scratch with the masked-language-model objective.",
        discussion: """
        Texts are cut into sequences of at most --max-len wordpieces ([CLS] and [SEP] included); \
        each batch is masked afresh: 15% of the real tokens other than [CLS]/[SEP] are selected, of \
        those 80% become [MASK], 10% a random id, 10% stay. The head is BertForMaskedLM's \
        (transform dense + GELU + LayerNorm, decoder tied to the word embeddings, decoder bias); \
        logits are computed at the selected positions only. AdamW with linear warmup and decay. \
        The last 2% of the sequences (at most 512) are held out and scored once at the end under \
        a fixed masking. max_position_embeddings is 512, as BERT's, so longer inputs still load.
        Example (20 Newsgroups, ~10 min on 2 shared cores in a release build):
          fedmerge pretrain --out out/bert-mini-s1 --seed 1 --steps 300 \\
            --text orange-tab:.cache/data/orange/20newsgroups-train.tab
        Writes DIR/config.json, model.safetensors, vocab.txt and pretrain.json.
        """
    )

    @Option(help: "Output model directory (created; files are replaced atomically).") var out: String
    @Option(help: "Seed for the initialisation, shuffling, masking and dropout.") var seed: UInt64 = 0
    @Option(parsing: .upToNextOption,
            help: "Text files, each [FORMAT:]PATH with FORMAT text, csv, jsonl (default: from the extension) or a raw corpus: vader, trec, sms-spam, orange-tab.")
    var text: [String]
    @Option(help: "Directory whose vocab.txt (and tokenizer files) the model uses.") var tokenizer = ".cache/models/minilm-l6"
    @Option(help: "Encoder layers.") var layers = 4
    @Option(help: "Hidden size.") var hidden = 256
    @Option(help: "Attention heads (must divide --hidden).") var heads = 4
    @Option(help: "Feed-forward (intermediate) size.") var ff = 1024
    @Option(help: "Wordpieces per sequence, [CLS] and [SEP] included.") var maxLen = 64
    @Option(help: "Optimizer steps.") var steps = 1000
    @Option(help: "Sequences per step.") var batch = 32
    @Option(help: "Peak learning rate.") var lr: Float = 5e-4
    @Option(help: "Fraction of the steps spent warming the learning rate up.") var warmupRatio = 0.06
    @Option(help: "Weight decay (AdamW, not on biases/LayerNorm).") var weightDecay: Float = 0.01
    @Option(help: "Clip the global gradient norm to this.") var maxGradNorm: Float = 1
    @Flag(help: "Train without dropout (the saved config keeps 0.1 for later runs).") var noDropout = false
    @Option(help: "Use only the first N sequences (before the hold-out); for quick runs.") var maxSequences: Int?
    @Option(help: "CSV column / JSONL field holding the text.") var textField = "text"

    func validate() throws {
        guard !text.isEmpty else { throw ValidationError("give at least one --text file") }
        guard layers >= 1, hidden >= 1, heads >= 1, ff >= 1, hidden % heads == 0 else {
            throw ValidationError("--layers, --hidden, --heads and --ff must be ≥ 1 and --heads must divide --hidden")
        }
        guard maxLen >= 3, maxLen <= 512 else { throw ValidationError("--max-len must be in 3...512") }
        guard steps >= 1, batch >= 1, lr > 0, maxGradNorm > 0 else { throw ValidationError("--steps, --batch ≥ 1, --lr and --max-grad-norm > 0 are required") }
        guard warmupRatio >= 0, warmupRatio <= 1 else { throw ValidationError("--warmup-ratio must be in [0, 1]") }
        if let maxSequences, maxSequences < 2 { throw ValidationError("--max-sequences must be ≥ 2 (one is held out)") }
    }

    func run() throws {
        let wordPieces = try WordPieceTokenizer(vocabularyFile: tokenizer + "/vocab.txt")
        let masking = try TokenMasking(tokenizer: wordPieces)
        let texts = try TextSources.load(text, textField: textField)
        var corpus = PretrainingCorpus(texts: texts, tokenizer: wordPieces, maxLength: maxLen)
        guard corpus.count >= 2 else { throw PretrainingError.noText(files: text) }
        if let maxSequences { corpus.keepFirst(maxSequences) }
        let heldOut = corpus.holdOut(fraction: 0.02, limit: 512)

        let config = BertConfig(vocabSize: wordPieces.vocabularySize, hiddenSize: hidden, numHiddenLayers: layers,
                                numAttentionHeads: heads, intermediateSize: ff, maskedLMHead: true)
        let model = BertEncoder(config: config, seed: seed)
        var options = TrainingOptions()
        options.learningRate = lr; options.batchSize = batch; options.maxLength = maxLen; options.seed = seed
        options.weightDecay = weightDecay; options.warmupFraction = warmupRatio; options.maxGradNorm = maxGradNorm
        options.dropout = !noDropout
        print("pretraining \(layers)×\(hidden) (\(heads) heads, ff \(ff)), \(model.parameters.count) parameters, on \(corpus.count) sequences "
              + "(\(corpus.tokens) tokens from \(texts.count) texts), \(heldOut.count) held out; \(steps) steps of \(batch); "
              + "OpenBLAS \(OpenBLASCore.current) × \(BLAS.threads) threads")
        fflush(nil)
        let summary = try Pretrainer(model: model, masking: masking, options: options, steps: steps).train(corpus)
        let held = try MaskedLMEvaluation.score(model, corpus: heldOut, masking: masking, batchSize: batch, seed: seed)
        try ModelDirectory.save(model, to: out, tokenizerSource: tokenizer)
        print(String(format: "trained %d steps in %.1f s (%.2f steps/s); final MLM loss %.4f (mean of the last tenth of the steps); "
                     + "held out: MLM loss %.4f, accuracy %.4f on %d masked tokens; saved %@", steps, summary.seconds,
                     Double(steps) / summary.seconds, summary.finalLoss, held.loss, held.accuracy, held.predictions, out))
        let json: [String: Any] = [
            "final_mlm_loss": summary.finalLoss, "first_mlm_loss": summary.losses.first ?? 0,
            "heldout_mlm_loss": held.loss, "heldout_mlm_accuracy": held.accuracy, "heldout_predictions": held.predictions,
            "heldout_sequences": heldOut.count, "train_sequences": corpus.count, "train_tokens": corpus.tokens,
            "steps": steps, "batch": batch, "lr": Double(lr), "seed": seed, "seconds": summary.seconds,
            "layers": layers, "hidden": hidden, "heads": heads, "ff": ff, "max_len": maxLen, "text": text,
        ]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]), to: out + "/pretrain.json")
    }
}
