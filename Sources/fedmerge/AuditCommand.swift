// `fedmerge audit`: how much of an agent's text its statistics give away. Reads the model the
// Grams were collected with (the fine-tuned model the agent uploads; the base model works too,
// less exactly) and stats.safetensors, reconstructs token and token × position counts from
// layer 0's Gram and ranks tokens by a deeper layer's Gram; with the agent's data (a self-audit
// before upload) it scores the recovery against the truth. Writes audit.json and audit.svg.

import ArgumentParser
import AtomicIO
import Foundation
import Model
import SafeTensors

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Reconstruct an agent's tokens from its stats.safetensors (layer-0 Gram, and a deeper layer's); score against its data if given.",
        discussion: """
        Layer 0's query input for token w at position t is LN(E[w] + P[t] + T[0]), so its Gram is a
        non-negative sum of known rank-one terms. The audit screens every (w, t) by the largest
        count the Gram can hold for it (1/(vᵀG⁺v); below 1 the pair cannot have occurred), then
        solves non-negative least squares on the survivors. With --data and the settings the
        statistics were collected with (--gram-batches, --batch-size, --max-len, --seed), it
        prints recall/precision of the agent's vocabulary and the rank correlation of counts.
        """
    )

    @Option(help: "The model the statistics were collected with (the agent's fine-tuned model directory).") var model: String
    @Option(help: "The statistics file (stats.safetensors).") var stats: String
    @Option(help: "Directory for audit.json and audit.svg.") var out: String
    @Option(help: "Positions to try for every token (the agent's max_len, at most the model's).") var positions = 64
    @Option(help: "A deeper layer to attack by context-free candidates (0 skips it).") var deepLayer = 1
    @Option(help: "Token × position columns added to the least-squares solve per scoring pass.") var batch = 1500
    @Option(help: "Scoring rounds of the least-squares solve at most (it stops earlier when no column can still help).") var rounds = 30
    @Option(help: "Tokens listed in the output.") var top = 30
    @Option(help: "Self-audit: the agent's training data (the text the statistics were computed from).") var data: String?
    @OptionGroup var dataOptions: DataArguments
    @Option(help: "Self-audit: Gram batches of the statistics run.") var gramBatches = 16
    @Option(help: "Self-audit: examples per Gram batch.") var batchSize = 16
    @Option(help: "Self-audit: max tokens per text of the statistics run.") var maxLen = 128
    @Option(help: "Self-audit: seed of the statistics run's example order.") var seed: UInt64 = 42

    func validate() throws {
        guard positions >= 1, batch >= 1, rounds >= 1, top >= 1, deepLayer >= 0, gramBatches >= 1, batchSize >= 1, maxLen >= 2 else {
            throw ValidationError("--positions, --batch, --rounds, --top, --gram-batches, --batch-size must be ≥ 1, --deep-layer ≥ 0, --max-len ≥ 2")
        }
    }

    func run() throws {
        let encoder = try ModelDirectory.load(model)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: model + "/vocab.txt")
        let file = try SafeTensorsFile(path: stats)
        var truth: GramSampleTokens?
        if let data {
            var plan = StatisticsPlan()
            plan.gramBatches = gramBatches; plan.batchSize = batchSize; plan.maxLength = maxLen; plan.seed = seed
            truth = GramSampleTokens(data: try dataOptions.load(data, labelNames: encoder.config.labels.isEmpty ? nil : encoder.config.labels),
                                     tokenizer: tokenizer, plan: plan)
        }
        let report = try StatisticsAudit.run(model: encoder, modelPath: model, tokenizer: tokenizer, stats: file,
                                             positions: min(positions, encoder.config.maxPositionEmbeddings),
                                             deepLayer: deepLayer == 0 ? nil : deepLayer, truth: truth,
                                             batch: batch, rounds: rounds, top: top)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let encoder2 = JSONEncoder()
        encoder2.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder2.encode(report), to: out + "/audit.json")
        try AtomicFile.write(Data(AuditChart.svg(report).utf8), to: out + "/audit.svg")
        print(Self.summary(report))
        print("wrote \(out)/audit.json and \(out)/audit.svg")
    }

    static func summary(_ r: StatisticsAuditReport) -> String {
        var lines: [String] = []
        if let n = r.noise { lines.append(String(format: "statistics are DP-noised: ε %.3g, δ %.3g, clip %.3g (s = %.3g)", n.epsilon, n.delta, n.clip, n.noiseMultiplier)) }
        for layer in [r.layer0] + (r.deep.map { [$0] } ?? []) {
            lines.append("\(layer.linear) (\(layer.numRows) rows): \(layer.method)")
            if let s = layer.score {
                lines.append("  vocabulary: " + s.summary)
            }
            if let e = layer.exactMultiset { lines.append("  token × position multiset recovered exactly: \(e)") }
            lines.append("  top: " + layer.top.prefix(15).map { t in
                t.token + (t.recovered.map { String(format: " %.1f", $0) } ?? "") + (t.truth.map { " (\($0))" } ?? "")
            }.joined(separator: ", "))
        }
        lines.append(String(format: "%.1f s", r.seconds))
        return lines.joined(separator: "\n")
    }
}
