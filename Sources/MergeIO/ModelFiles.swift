// ModelFiles: reading a Hugging Face model directory (single or sharded model.safetensors)
// and a stats.safetensors into the Merge target's NamedTensors/NamedStatistics, and the
// side files (config, tokenizer) a merged model directory carries along.

import Foundation
import LinAlg
import Merge
import SafeTensors

public enum ModelFilesError: Error, CustomStringConvertible {
    case noWeights(directory: String)
    case badShardIndex(path: String, detail: String)
    case noStatistics(model: String, path: String)

    public var description: String {
        switch self {
        case let .noWeights(directory):
            return "\(directory): no model.safetensors (or model.safetensors.index.json) in this model directory"
        case let .badShardIndex(path, detail): return "\(path): \(detail)"
        case let .noStatistics(model, path):
            return "model \(model): statistics file \(path) does not exist (set `stats:` for this model or run the agent's statistics pass)"
        }
    }
}

public enum ModelFiles {
    /// Files copied from the first model into a merged model directory when present.
    public static let sideFiles = ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]

    /// The safetensors files holding a model directory's weights.
    public static func weightFiles(directory: String) throws -> [String] {
        let single = directory + "/model.safetensors"
        if FileManager.default.fileExists(atPath: single) { return [single] }
        let index = directory + "/model.safetensors.index.json"
        guard FileManager.default.fileExists(atPath: index) else { throw ModelFilesError.noWeights(directory: directory) }
        guard let data = FileManager.default.contents(atPath: index),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = root["weight_map"] as? [String: String] else {
            throw ModelFilesError.badShardIndex(path: index, detail: "not a JSON object with a \"weight_map\" of tensor → shard file")
        }
        var shards: [String] = []
        for shard in map.values.sorted() where !shards.contains(shard) { shards.append(shard) }
        return shards.map { directory + "/" + $0 }
    }

    /// Every floating-point tensor of a model directory as fp32. Integer buffers (e.g.
    /// position_ids) are not weights: they are returned by name in `skipped`.
    public static func loadModel(directory: String) throws -> (tensors: NamedTensors, skipped: [String]) {
        var tensors = NamedTensors()
        var skipped: [String] = []
        for path in try weightFiles(directory: directory) {
            let file = try SafeTensorsFile(path: path)
            for name in file.names {
                guard let entry = file.entry(name), [.F32, .F16, .BF16, .F64].contains(entry.dtype) else { skipped.append(name); continue }
                guard !tensors.contains(name) else { throw SafeTensorsError.duplicateName(path: path, tensor: name) }
                tensors.set(name, try file.floatTensor(name))
            }
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
