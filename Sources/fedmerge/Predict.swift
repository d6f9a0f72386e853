// `fedmerge predict`: label probabilities of a fine-tuned classifier for each text of a file
// (or stdin, or --text), one JSON object per text in input order, in bounded memory.

import ArgumentParser
import Foundation
import Model

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each text's label probabilities and argmax label as one JSON object per line.",
        discussion: """
        Each line: {"line": N, "label": "<argmax>", "probabilities": {"<label>": p, …}}, in input \
        order; N is the input line (or the --text's position). Blank lines are skipped.
          fedmerge predict --model out/minilm-movies --input reviews.txt > predictions.jsonl

        """ + TextFileArguments.memoryDiscussion
    )

    @Option(help: "Model directory (config.json, model.safetensors or its shards, vocab.txt).") var model: String
    @Option(help: "Input file of texts (- reads stdin).") var input: String?
    @Option(name: .customLong("text"), help: "A text (repeatable), instead of --input.") var texts: [String] = []
    @Option(help: "Write the JSON lines to this file (it appears only when complete) instead of stdout.") var output: String?
    @OptionGroup var file: TextFileArguments

    func validate() throws {
        guard (input == nil) != texts.isEmpty else { throw ValidationError("give either --input FILE or at least one --text") }
    }

    func run() throws {
        let encoder = try ModelDirectory.load(model)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: model + "/vocab.txt")
        let predictor = try BatchedPredictor(model: encoder, tokenizer: tokenizer, plan: file.plan)
        let labels = encoder.config.labels
        let keys = try labels.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: .fragmentsAllowed), as: UTF8.self) }
        let problemType = encoder.config.problemType

        var next: () throws -> (Int, String)?
        var progress = ProgressBarHandle(bar: nil)
        var source = "--text"
        if let input {
            let reader = try TextRecordReader(path: input, format: file.format, textField: file.textField)
            source = reader.file
            progress = file.progressBar(for: input, label: "predict")
            next = { try reader.next().map { ($0.line, $0.text) } }
        } else {
            var remaining = texts.enumerated().makeIterator()
            next = { remaining.next().map { ($0.offset + 1, $0.element) } }
        }
        var count = 0
        try LineOutput.write(to: output) { line in
            try predictor.run(next: next, progress: { progress.advance($0) }) { number, logits in
                let p = problemType.probabilities(logits)
                let best = p.indices.max { p[$0] < p[$1] }!
                let fields = (0..<p.count).map { keys[$0] + ":" + String(format: "%.6f", p[$0]) }.joined(separator: ",")
                try line("{\"line\":\(number),\"label\":\(keys[best]),\"probabilities\":{\(fields)}}")
                count += 1
            }
            // Checked inside the output's scope, so an empty input leaves no output file behind.
            guard count > 0 else { throw DatasetError.empty(file: source) }
        }
        progress.finish()
    }
}
