// `fedmerge predict`: label probabilities of a fine-tuned classifier, one JSON object per text.

import ArgumentParser
import Foundation
import Model

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the label probabilities of each --text as a JSON object {label: probability}."
    )

    @Option(help: "Fine-tuned model directory (config.json with id2label).") var model: String
    @Option(name: .customLong("text"), help: "A text to classify (repeatable).") var texts: [String] = []
    @Option(help: "Maximum tokens per text.") var maxLen = 512

    func validate() throws {
        guard !texts.isEmpty else { throw ValidationError("give at least one --text") }
    }

    func run() throws {
        let encoder = try ModelDirectory.load(model)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: model + "/vocab.txt")
        let p = try encoder.probabilities(EncoderInput(tokenizer.batch(texts, maxLength: min(maxLen, encoder.config.maxPositionEmbeddings))))
        let labels = encoder.config.labels
        for b in 0..<texts.count {
            let fields = labels.enumerated().map { k, name -> String in
                let key = String(decoding: try! JSONSerialization.data(withJSONObject: name, options: .fragmentsAllowed), as: UTF8.self)
                return key + ":" + String(format: "%.6f", p.storage[b * labels.count + k])
            }
            print("{" + fields.joined(separator: ",") + "}")
        }
    }
}
