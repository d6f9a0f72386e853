// `fedmerge embed`: sentence embeddings — the last hidden state mean-pooled over non-padding
// tokens and L2-normalised (how all-MiniLM-L6-v2 is used), one JSON array per text per line.

import ArgumentParser
import Foundation
import Model

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one JSON array per --text: its mean-pooled, L2-normalised sentence embedding."
    )

    @Option(help: "Model directory.") var model: String
    @Option(name: .customLong("text"), help: "A text to embed (repeatable).") var texts: [String] = []
    @Option(help: "Maximum tokens per text.") var maxLen = 512

    func validate() throws {
        guard !texts.isEmpty else { throw ValidationError("give at least one --text") }
    }

    func run() throws {
        let encoder = try ModelDirectory.load(model)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: model + "/vocab.txt")
        let e = try encoder.sentenceEmbeddings(EncoderInput(tokenizer.batch(texts, maxLength: min(maxLen, encoder.config.maxPositionEmbeddings))))
        let c = encoder.config.hiddenSize
        for b in 0..<texts.count {
            print("[" + (0..<c).map { String(format: "%.7g", e.storage[b * c + $0]) }.joined(separator: ",") + "]")
        }
    }
}
