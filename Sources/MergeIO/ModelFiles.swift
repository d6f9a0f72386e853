// ModelFiles: reading a Hugging Face model directory (single or sharded, via SafeTensorsCheckpoint)
// and a stats.safetensors into the Merge target's NamedTensors/NamedStatistics, and the
// side files (config, tokenizer) a merged model directory carries along.

import Foundation
import LinAlg
import Merge
import SafeTensors

public enum ModelFilesError: Error, CustomStringConvertible {
    case noStatistics(model: String, path: String)

    public var description: String {
        switch self {
        case let .noStatistics(model, path):
            return "model \(model): statistics file \(path) does not exist (set `stats:` for this model or run the agent's statistics pass)"
        }
    }
}

public enum ModelFiles {
    /// Files copied from the first model into a merged model directory when present.
    public static let sideFiles = ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

    /// Every floating-point tensor of a model directory as fp32. Integer buffers (e.g.
    /// position_ids) are not weights: they are returned by name in `skipped`.
    public static func loadModel(directory: String) throws -> (tensors: NamedTensors, skipped: [String]) {
        var tensors = NamedTensors()
        var skipped: [String] = []
        let checkpoint = try SafeTensorsCheckpoint(directory: directory)
        for name in checkpoint.names {
            guard let entry = checkpoint.entry(name), [.F32, .F16, .BF16, .F64].contains(entry.dtype) else { skipped.append(name); continue }
            tensors.set(name, try checkpoint.floatTensor(name))
        }
        return (tensors, skipped)
    }

    /// The statistics of one model, keeping only the kinds a method needs (Grams, Fishers, …).
    public static func loadStatistics(path: String, model: String, kinds: Set<StatisticKind>) throws -> NamedStatistics {
        guard !kinds.isEmpty else { return NamedStatistics() }
        guard FileManager.default.fileExists(atPath: path) else { throw ModelFilesError.noStatistics(model: model, path: path) }
        let file = try SafeTensorsFile(path: path)
        let suffixes = kinds.compactMap(\.tensorSuffix)
        var tensors = NamedTensors()
        for name in file.names where suffixes.contains(where: { name.hasSuffix($0) }) {
            tensors.set(name, try file.floatTensor(name))
        }
        return NamedStatistics(tensors: tensors, metadata: file.metadata)
    }

    /// Copies the side files present in `source` into `destination`; with `headsMapping`
    /// non-empty, records it in config.json as "fedmerge_heads" (model name → head prefix).
    public static func copySideFiles(from source: String, to destination: String, headsMapping: [String: String]) throws -> [String] {
        var copied: [String] = []
        for name in sideFiles {
            let from = source + "/" + name
            guard FileManager.default.fileExists(atPath: from) else { continue }
            let to = destination + "/" + name
            if name == "config.json", !headsMapping.isEmpty,
               let data = FileManager.default.contents(atPath: from),
               var config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                config["fedmerge_heads"] = headsMapping
                try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: to))
            } else {
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
            copied.append(name)
        }
        return copied
    }
}
