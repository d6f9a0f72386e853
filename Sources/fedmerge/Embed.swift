// `fedmerge embed`: sentence embeddings — the last hidden state mean-pooled over non-padding
// tokens and L2-normalised (how all-MiniLM-L6-v2 is used), one JSON array per text per line.

import ArgumentParser
import Foundation
import Model

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one JSON array per --text: its mean-pooled, L2-normalised sentence embedding."
    )

    @OptionGroup var arguments: TextArguments

    func run() throws {
        let (encoder, input) = try arguments.load()
        let e = try encoder.sentenceEmbeddings(input)
        let c = encoder.config.hiddenSize
        for b in 0..<input.batchSize {
            print("[" + (0..<c).map { String(format: "%.7g", e.storage[b * c + $0]) }.joined(separator: ",") + "]")
        }
    }
}
