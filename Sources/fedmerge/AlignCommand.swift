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
        --variant ATTENTION,RESIDUAL,FEED_FORWARD=DIR (repeatable) writes B under other choices
        too, searched from the same correlations (one pass over the data for all of them), e.g.
          --variant monotonic,identity,match=out/monotonic --variant vanilla,all,identity=out/residual-all
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
    @Option(help: "ATTENTION,RESIDUAL,FEED_FORWARD=DIR: also write B aligned under these choices (repeatable).")
    var variant: [String] = []
    @Flag(help: "Replace --out (and each variant's DIR) if it exists.") var overwrite = false

    /// `--variant` values parsed, in order.
    func variants() throws -> [(attention: AttentionAlignment, residual: ResidualAlignment, feedForward: FeedForwardAlignment, out: String)] {
        try variant.map { text in
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            let choices = parts.first.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
            guard parts.count == 2, !parts[1].isEmpty, choices.count == 3 else {
                throw ValidationError("--variant '\(text)': expected ATTENTION,RESIDUAL,FEED_FORWARD=DIR, e.g. monotonic,identity,match=out/monotonic")
            }
            guard let attention = AttentionAlignment(rawValue: choices[0]) else {
                throw ValidationError("--variant '\(text)': attention '\(choices[0])' is not one of \(AttentionAlignment.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let residual = ResidualAlignment(rawValue: choices[1]) else {
                throw ValidationError("--variant '\(text)': residual '\(choices[1])' is not one of \(ResidualAlignment.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let feedForward = FeedForwardAlignment(rawValue: choices[2]) else {
                throw ValidationError("--variant '\(text)': feed-forward '\(choices[2])' is not one of \(FeedForwardAlignment.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return (attention, residual, feedForward, parts[1])
        }
    }

    func validate() throws {
        guard maxTexts >= 1, batchSize >= 1 else { throw ValidationError("--max-texts and --batch-size must be ≥ 1") }
        guard maxLen >= 2 else { throw ValidationError("--max-len must be ≥ 2") }
        let outs = [out] + (try variants()).map(\.out)
        guard Set(outs).count == outs.count else { throw ValidationError("--out and every --variant need their own directory") }
    }

    func run() throws {
        let variants = try variants()
        for directory in [out] + variants.map(\.out) where FileManager.default.fileExists(atPath: directory) && !overwrite {
            throw ValidationError("\(directory) exists; pass --overwrite to replace it")
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
        let others = variants.map { v in
            var o = options
            o.attention = v.attention
            o.residual = v.residual
            o.feedForward = v.feedForward
            return (options: o, out: v.out)
        }
        let outcomes = try ModelAlignment.alignDirectories(reference: reference, model: model, data: data, out: out, options: options,
                                                           variants: others)
        for (k, (outcome, choice)) in zip(outcomes, [(options: options, out: out)] + others).enumerated() {
            if k == 0 { print("aligned \(model) to \(reference) on \(outcome.texts) texts (\(outcome.tokens) tokens)") }
            print("\(choice.out): attention \(choice.options.attention.rawValue), residual \(choice.options.residual.rawValue), feed-forward \(choice.options.feedForward.rawValue)")
            for p in outcome.points {
                print("  \(p.point): mean matched correlation \(String(format: "%.4f", p.before)) → \(String(format: "%.4f", p.after))")
            }
        }
        print("wrote \(([out] + variants.map(\.out)).joined(separator: ", "))")
    }
}
