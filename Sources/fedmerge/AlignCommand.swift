// `fedmerge align --reference A --model B --data FILE --out DIR`: permute B's hidden units so
// they match A's (Verma & Elbayad's transformer alignment, DESIGN.md §9) and write B permuted.

import Alignment
import ArgumentParser
import Foundation
import Model

extension AttentionAlignment: ExpressibleByArgument {}
extension ResidualAlignment: ExpressibleByArgument {}
extension FeedForwardAlignment: ExpressibleByArgument {}

struct AlignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "align",
        abstract: "Permute a model's hidden units to match a reference model's (for merging models from different initialisations).",
        discussion: """
        Both models run on the same unlabelled texts; the Pearson correlation of every unit of A
        with every unit of B is taken over the non-padding tokens at each point (residual stream
        after the embeddings and after each attention block and layer, Q/K/V outputs, feed-forward
        activations), and a linear assignment maximising the summed correlation of matched units
        picks B's permutation:
          feed-forward neurons per layer (--feed-forward match; identity leaves them in place);
          attention (--attention): vanilla (no permutation), ignore_heads (one assignment over
            all features), monotonic (per head, heads kept in order), head_perm (per head pair,
            then heads matched);
            Q and K of a head share an inner permutation, V has its own (W_O's input columns
            follow it), and all three move with the same head;
          residual stream (--residual): identity, first, last, all (one P from every residual
            point's correlations summed), separate (a P per point: not function-preserving).
        DIR gets B's tensors permuted, B's config and tokenizer files, and alignment.json (the
        permutation as gathers, and the mean correlation of matched units before and after).
        With identity, first, last or all residual and head-respecting attention (vanilla,
        monotonic, head_perm), B computes the same function as before.
        """
    )

    @Option(help: "The reference model directory (A): its units stay where they are.") var reference: String
    @Option(help: "The model directory to permute (B).") var model: String
    @Option(help: "Unlabelled texts both models run on (text: one per line, csv, jsonl).") var data: String
    @Option(help: "Output model directory (must not exist unless --overwrite).") var out: String
    @Option(help: "vanilla, ignore_heads, monotonic or head_perm.") var attention: AttentionAlignment = .headPerm
    @Option(help: "identity, first, last, all or separate.") var residual: ResidualAlignment = .all
    @Option(help: "match or identity (feed-forward neurons left in place).") var feedForward: FeedForwardAlignment = .match
    @Option(help: "Texts read from --data at most.") var maxTexts = 4000
    @Option(help: "Texts per forward batch.") var batchSize = 16
    @Option(help: "Maximum tokens per text (capped at max_position_embeddings).") var maxLen = 128
    @Option(help: "Input layout: text, csv, jsonl. Default: from the extension.") var format: TextFormat?
    @Option(help: "CSV column / JSONL field holding the text.") var textField = "text"
    @Flag(help: "Replace --out if it exists.") var overwrite = false

    func validate() throws {
        guard maxTexts >= 1, batchSize >= 1 else { throw ValidationError("--max-texts and --batch-size must be ≥ 1") }
        guard maxLen >= 2 else { throw ValidationError("--max-len must be ≥ 2") }
    }

    func run() throws {
        if FileManager.default.fileExists(atPath: out) && !overwrite {
            throw ValidationError("\(out) exists; pass --overwrite to replace it")
        }
        var options = AlignmentOptions()
        options.attention = attention
        options.residual = residual
        options.feedForward = feedForward
        options.maxTexts = maxTexts
        options.batchSize = batchSize
        options.maxLength = maxLen
        options.format = format
        options.textField = textField
        let outcome = try ModelAlignment.alignDirectories(reference: reference, model: model, data: data, out: out, options: options)
        print("aligned \(model) to \(reference) on \(outcome.texts) texts (\(outcome.tokens) tokens): attention \(attention.rawValue), residual \(residual.rawValue), feed-forward \(feedForward.rawValue)")
        for p in outcome.points {
            print("  \(p.point): mean matched correlation \(String(format: "%.4f", p.before)) → \(String(format: "%.4f", p.after))")
        }
        print("wrote \(out)")
    }
}
