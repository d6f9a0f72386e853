// ModelDirectory: loading and saving a Hugging Face model directory (config.json,
// model.safetensors or its shards, vocab.txt, tokenizer files). Saved models use
// BertForSequenceClassification names (`bert.` prefix, `classifier.*`); loading accepts
// prefixed and unprefixed names.

import Foundation
import LinAlg
import AtomicIO
import SafeTensors

public enum ModelDirectory {
    /// Files copied verbatim from the source directory when present (vocab.txt is required).
    public static let tokenizerFiles = ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"]

    /// Loads config.json and the weights (model.safetensors, or the shards its
    /// model.safetensors.index.json lists) from `directory`. A base BertModel (no classifier)
    /// loads without a head; the pooler, when absent, keeps its random init as HF does.
    public static func load(_ directory: String, seed: UInt64 = 0) throws -> BertEncoder {
        let config = try BertConfig(contentsOf: directory + "/config.json")
        let file = try SafeTensorsCheckpoint(directory: directory)
        let model = BertEncoder(config: config, seed: seed, randomize: false)
        var rng = SplitMix64(seed: seed)
        for e in model.parameters.entries {
            let candidates = e.name.hasPrefix("classifier.") || e.name.hasPrefix("cls.") ? [e.name] : ["bert." + e.name, e.name]
            guard let name = candidates.first(where: { file.entry($0) != nil }) else {
                if e.name.hasPrefix("pooler.") { model.initialize(e, using: &rng); continue }
                throw EncoderError.missingTensor(file: file.indexPath ?? file.files[0].path, tensor: candidates[0])
            }
            let shape = file.entry(name)!.shape
            guard shape == e.shape else {
                throw EncoderError.tensorShapeMismatch(file: file.file(containing: name)!.path, tensor: name, expected: e.shape, actual: shape)
            }
            model.parameters.set(e.name, from: try file.floatTensor(name))
        }
        return model
    }

    /// The name a parameter (or a linear, without `.weight`) has in a saved
    /// BertForSequenceClassification (or BertForMaskedLM) state dict: `bert.` + name, except the
    /// classifier's and the masked-LM head's (`cls.predictions.*`).
    public static func savedName(_ parameter: String) -> String {
        parameter == "classifier" || parameter.hasPrefix("classifier.") || parameter.hasPrefix("cls.") ? parameter : "bert." + parameter
    }

    /// Saves `model` into `directory` (created if needed): model.safetensors first, then the
    /// tokenizer files copied from `tokenizerSource`, config.json last. Each file is written to
    /// a temporary name, fsynced and renamed, so an interrupted save never leaves a torn file.
    public static func save(_ model: BertEncoder, to directory: String, tokenizerSource: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw EncoderError.writeFailed(path: directory, reason: error.localizedDescription)
        }
        let p = model.parameters
        try SafeTensorsWriter.write(layout: p.entries.map { (savedName($0.name), $0.shape) },
                                    metadata: ["format": "pt"], to: directory + "/model.safetensors") { saved in
            p.tensor(saved.hasPrefix("bert.") ? String(saved.dropFirst(5)) : saved)!
        }
        for name in tokenizerFiles {
            let src = tokenizerSource + "/" + name
            guard let data = FileManager.default.contents(atPath: src) else {
                if name == "vocab.txt" { throw EncoderError.missingFile(path: src) }
                continue
            }
            if URL(fileURLWithPath: src).standardized == URL(fileURLWithPath: directory + "/" + name).standardized { continue }
            try AtomicFile.write(data, to: directory + "/" + name)
        }
        try AtomicFile.write(try model.config.jsonData(), to: directory + "/config.json")
    }
}
