// A sharded checkpoint (model.safetensors.index.json + shards, as save_pretrained writes large
// models) loads through SafeTensorsCheckpoint to exactly the logits of the unsharded file, and
// a torn or hostile index is refused naming the index or the shard.

import Foundation
import LinAlg
@testable import Model
import SafeTensors
import XCTest

final class ShardedCheckpointTests: XCTestCase {
    var tmp = ""

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fedmerge-shards-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp + "/src", withIntermediateDirectories: true)
        try "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n".write(toFile: tmp + "/src/vocab.txt", atomically: true, encoding: .utf8)
        let c = BertConfig(vocabSize: 30, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16,
                           maxPositionEmbeddings: 16, initializerRange: 0.5, labels: ["a", "b", "c"])
        try ModelDirectory.save(BertEncoder(config: c, seed: 4), to: tmp + "/single", tokenizerSource: tmp + "/src")
        try ModelDirectory.save(BertEncoder(config: c, seed: 4), to: tmp + "/sharded", tokenizerSource: tmp + "/src")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    /// Splits `directory`'s model.safetensors into `count` shards and an index with `weightMap`'s edits applied.
    func shard(_ directory: String, into count: Int, edit: (inout [String: String]) -> Void = { _ in }) throws {
        let file = try SafeTensorsFile(path: directory + "/model.safetensors")
        var map: [String: String] = [:]
        let perShard = (file.names.count + count - 1) / count
        for s in 0..<count {
            let name = String(format: "model-%05d-of-%05d.safetensors", s + 1, count)
            let names = Array(file.names.dropFirst(s * perShard).prefix(perShard))
            try SafeTensorsWriter.write(tensors: try names.map { ($0, try file.floatTensor($0)) }, to: directory + "/" + name)
            for n in names { map[n] = name }
        }
        edit(&map)
        try JSONSerialization.data(withJSONObject: ["metadata": [String: Int](), "weight_map": map])
            .write(to: URL(fileURLWithPath: directory + "/model.safetensors.index.json"))
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
    }

    func testShardedCheckpointLoadsToIdenticalLogits() throws {
        try shard(tmp + "/sharded", into: 3)
        let single = try ModelDirectory.load(tmp + "/single"), sharded = try ModelDirectory.load(tmp + "/sharded")
        let input = try EncoderInput(sequences: [[2, 4, 7, 3], [2, 9, 11, 12, 3]])
        try single.forward(input)
        try sharded.forward(input)
        XCTAssertEqual(sharded.logits.storage, single.logits.storage)
        XCTAssertEqual(Array(sharded.parameters.values), Array(single.parameters.values))
        XCTAssertEqual(try SafeTensorsCheckpoint(directory: tmp + "/sharded").files.count, 3)
    }

    func testIndexNamingAShardOutsideTheDirectoryIsRefused() throws {
        try shard(tmp + "/sharded", into: 2) { map in map[map.keys.sorted()[0]] = "../single/model.safetensors" }
        XCTAssertThrowsError(try ModelDirectory.load(tmp + "/sharded")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .badShardIndex(path: tmp + "/sharded/model.safetensors.index.json",
                                                                      detail: "shard \"../single/model.safetensors\" is not a file name in the index's directory"))
        }
    }

    func testTensorMappedToTheWrongShardIsNamed() throws {
        let tensor = "bert.embeddings.LayerNorm.bias"
        try shard(tmp + "/sharded", into: 2) { map in
            map[tensor] = map[tensor] == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors"
        }
        XCTAssertThrowsError(try ModelDirectory.load(tmp + "/sharded")) { error in
            guard case let .missingTensor(_, name)? = error as? SafeTensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, tensor)
        }
    }

    func testDirectoryWithoutWeightsIsNamed() throws {
        try FileManager.default.removeItem(atPath: tmp + "/single/model.safetensors")
        XCTAssertThrowsError(try ModelDirectory.load(tmp + "/single")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .noWeights(directory: tmp + "/single"))
        }
    }
}
