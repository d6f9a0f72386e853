// Options shared by the commands that run a model on texts given on the command line
// (embed, predict): the model directory, the texts and the token limit.

import ArgumentParser
import Model

struct TextArguments: ParsableArguments {
    @Option(help: "Model directory (config.json, model.safetensors, vocab.txt).") var model: String
    @Option(name: .customLong("text"), help: "A text (repeatable).") var texts: [String] = []
    @Option(help: "Maximum tokens per text (capped at max_position_embeddings).") var maxLen = 512

    func validate() throws {
        guard !texts.isEmpty else { throw ValidationError("give at least one --text") }
        guard maxLen >= 2 else { throw ValidationError("--max-len must be ≥ 2") }
    }

    /// The model and the texts as one padded batch.
    func load() throws -> (BertEncoder, EncoderInput) {
        let encoder = try ModelDirectory.load(model)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: model + "/vocab.txt")
        let limit = min(maxLen, encoder.config.maxPositionEmbeddings)
        return (encoder, EncoderInput(tokenizer.batch(texts, maxLength: limit)))
    }
}
