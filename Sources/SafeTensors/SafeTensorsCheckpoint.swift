// SafeTensorsCheckpoint: a model's weights as Hugging Face stores them — one model.safetensors,
// or shards named by model.safetensors.index.json — opened as one name → tensor view. The one
// reader of sharded checkpoints: the Model loader, MergeIO and `fedmerge inspect` all use it.

import Foundation
import LinAlg

public final class SafeTensorsCheckpoint: @unchecked Sendable {
    /// The memory-mapped files, in the order their tensors are listed.
    public let files: [SafeTensorsFile]
    /// The shard index this checkpoint was read through, when it is sharded.
    public let indexPath: String?
    /// Every tensor name, file by file in data order.
    public let names: [String]
    private let fileIndex: [String: Int]

    /// Opens `directory`'s weights: model.safetensors when present, else the shards listed by
    /// model.safetensors.index.json (its "weight_map" of tensor name → shard file name).
    public convenience init(directory: String) throws {
        let single = directory + "/model.safetensors"
        if FileManager.default.fileExists(atPath: single) {
            try self.init(files: [SafeTensorsFile(path: single)], indexPath: nil)
            return
        }
        let index = directory + "/model.safetensors.index.json"
        guard FileManager.default.fileExists(atPath: index) else { throw SafeTensorsError.noWeights(directory: directory) }
        try self.init(index: index)
    }

    /// Opens a checkpoint through its shard index (a `*.safetensors.index.json`). Every shard
    /// must be a plain file name beside the index, and every tensor the map names must be in
    /// the shard it names, so a torn or hand-edited checkpoint is refused rather than half-read.
    public convenience init(index: String) throws {
        guard let data = FileManager.default.contents(atPath: index),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = root["weight_map"] as? [String: String] else {
            throw SafeTensorsError.badShardIndex(path: index, detail: "not a JSON object with a \"weight_map\" of tensor → shard file")
        }
        let directory = (index as NSString).deletingLastPathComponent
        var shards: [String] = []
        for shard in map.values.sorted() where !shards.contains(shard) {
            // A shard name is a file beside the index, never a path that could leave the directory.
            guard !shard.isEmpty, !shard.contains("/"), !shard.hasPrefix(".") else {
                throw SafeTensorsError.badShardIndex(path: index, detail: "shard \"\(shard)\" is not a file name in the index's directory")
            }
            shards.append(shard)
        }
        guard !shards.isEmpty else { throw SafeTensorsError.badShardIndex(path: index, detail: "the weight_map is empty") }
        let files = try shards.map { shard -> SafeTensorsFile in
            let path = (directory.isEmpty ? "." : directory) + "/" + shard
            guard FileManager.default.fileExists(atPath: path) else {
                throw SafeTensorsError.badShardIndex(path: index, detail: "shard \(shard) does not exist")
            }
            return try SafeTensorsFile(path: path)
        }
        for (tensor, shard) in map.sorted(by: { $0.key < $1.key }) where !files[shards.firstIndex(of: shard)!].contains(tensor) {
            throw SafeTensorsError.missingTensor(path: files[shards.firstIndex(of: shard)!].path, tensor: tensor)
        }
        try self.init(files: files, indexPath: index)
    }

    /// Opens one safetensors file, or a checkpoint through its index when `path` ends in `.index.json`.
    public convenience init(path: String) throws {
        if path.hasSuffix(".index.json") { try self.init(index: path) } else { try self.init(files: [SafeTensorsFile(path: path)], indexPath: nil) }
    }

    private init(files: [SafeTensorsFile], indexPath: String?) throws {
        var fileIndex: [String: Int] = [:]
        var names: [String] = []
        for (i, file) in files.enumerated() {
            for name in file.names {
                guard fileIndex.updateValue(i, forKey: name) == nil else { throw SafeTensorsError.duplicateName(path: file.path, tensor: name) }
                names.append(name)
            }
        }
        self.files = files
        self.indexPath = indexPath
        self.names = names
        self.fileIndex = fileIndex
    }

    /// Metadata of every file, merged (a key set by several shards keeps the first one's value).
    public var metadata: [String: String] {
        files.reduce(into: [:]) { all, file in all.merge(file.metadata) { first, _ in first } }
    }

    public func contains(_ name: String) -> Bool { fileIndex[name] != nil }

    /// The file holding `name`.
    public func file(containing name: String) -> SafeTensorsFile? { fileIndex[name].map { files[$0] } }

    public func entry(_ name: String) -> SafeTensorsEntry? { file(containing: name)?.entry(name) }

    /// A floating-point tensor as Float32, from whichever file holds it.
    public func floatTensor(_ name: String) throws -> Tensor<Float> {
        guard let file = file(containing: name) else { throw SafeTensorsError.missingTensor(path: files[0].path, tensor: name) }
        return try file.floatTensor(name)
    }
}
