// `fedmerge predict`: label probabilities of a fine-tuned classifier, one JSON object per text.

import ArgumentParser
import Foundation
import Model

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the label probabilities of each --text as a JSON object {label: probability}."
    )

    @OptionGroup var arguments: TextArguments

    func run() throws {
        let (encoder, input) = try arguments.load()
        let p = try encoder.probabilities(input)
        let labels = encoder.config.labels
        for b in 0..<input.batchSize {
            let fields = try labels.enumerated().map { k, name -> String in
                let key = String(decoding: try JSONSerialization.data(withJSONObject: name, options: .fragmentsAllowed), as: UTF8.self)
                return key + ":" + String(format: "%.6f", p.storage[b * labels.count + k])
            }
            print("{" + fields.joined(separator: ",") + "}")
        }
    }
}
