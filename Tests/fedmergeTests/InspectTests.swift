// `fedmerge inspect` as a user runs it: a model directory's tensors and the admission
// fingerprint (checked against sha256sum of config.json ‖ model.safetensors), a sharded
// checkpoint's shards, and a statistics file's Grams judged finite and symmetric.

import Foundation
import LinAlg
import Model
import SafeTensors
import XCTest

final class InspectTests: XCTestCase {
    var tmp = ""

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fedmerge-inspect-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func inspect(_ path: String) throws -> [String: Any] {
        let run = try FedmergeProcess.run(["inspect", path, "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        return try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
    }

    func testModelDirectoryShowsEveryTensorAndTheFingerprintSha256sumComputes() throws {
        let model = try ClassifierFixture(directory: tmp + "/model")
        let r = try inspect(model.directory)
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "cat config.json model.safetensors | sha256sum"]
        shell.currentDirectoryURL = URL(fileURLWithPath: model.directory)
        let pipe = Pipe()
        shell.standardOutput = pipe
        try shell.run()
        let sum = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
        shell.waitUntilExit()
        XCTAssertEqual(r["fingerprint"] as? String, String(sum))

        let weights = r["weights"] as! [String: Any]
        let tensors = weights["tensors"] as! [[String: Any]]
        let entries = model.encoder.parameters.entries
        XCTAssertEqual(Set(tensors.map { $0["name"] as! String }), Set(entries.map { ModelDirectory.savedName($0.name) }))
        for e in entries {
            let t = tensors.first { $0["name"] as? String == ModelDirectory.savedName(e.name) }!
            XCTAssertEqual(t["shape"] as? [Int], e.shape)
            XCTAssertEqual(t["dtype"] as? String, "F32")
            XCTAssertEqual(t["bytes"] as? Int, 4 * e.count)
        }
        XCTAssertEqual(weights["parameters"] as? Int, model.encoder.parameters.count)

        let text = try FedmergeProcess.run(["inspect", model.directory])
        XCTAssertTrue(text.stdout.contains("fingerprint (SHA-256 of config.json ‖ model.safetensors, compared at admission): " + sum), text.stdout)
    }

    func testStatisticsFileReportsPerLinearStatisticsAndJudgesEachGram() throws {
        let symmetric = try Tensor<Float>(shape: [3, 3], storage: [2, 1, 0, 1, 3, 1, 0, 1, 4])
        let skewed = try Tensor<Float>(shape: [2, 2], storage: [1, 0.5, 0.25, 1])
        let broken = try Tensor<Float>(shape: [2, 2], storage: [1, .nan, .nan, 1])
        try SafeTensorsWriter.write(tensors: [
            ("enc.q.gram", symmetric), ("enc.o.gram", skewed), ("enc.f.gram", broken),
            ("enc.q.weight.fisher", skewed), ("enc.q.bias.fisher", try Tensor(shape: [2], storage: [1, 2])),
            ("enc.q.kfac_out", symmetric),
        ], metadata: ["enc.q.gram.num_rows": "7", "enc.k.gram.same_as": "enc.q", "enc.k.gram.num_rows": "7"], to: tmp + "/stats.safetensors")
        let r = try inspect(tmp + "/stats.safetensors")
        let s = (r["file"] as! [String: Any])["statistics"] as! [String: [String: Any]]
        let q = s["enc.q"]!["gram"] as! [String: Any]
        XCTAssertEqual(q["num_rows"] as? Int, 7)
        XCTAssertEqual(q["finite"] as? Bool, true)
        XCTAssertEqual(q["symmetric"] as? Bool, true)
        XCTAssertEqual(Set(s["enc.q"]!["fisher"] as! [String]), ["enc.q.weight", "enc.q.bias"])
        XCTAssertEqual((s["enc.q"]!["kfac_out"] as? [String: Any])?["shape"] as? [Int], [3, 3])
        let o = s["enc.o"]!["gram"] as! [String: Any]
        XCTAssertEqual(o["symmetric"] as? Bool, false)
        XCTAssertEqual(o["max_asymmetry"] as! Double, 0.25, accuracy: 1e-12)
        XCTAssertTrue(o["num_rows"] is NSNull)
        XCTAssertEqual((s["enc.f"]!["gram"] as! [String: Any])["finite"] as? Bool, false)
        XCTAssertEqual((s["enc.k"]!["gram"] as! [String: Any])["same_as"] as? String, "enc.q")
    }

    func testShardedCheckpointListsItsShardsAndHasNoAdmissionFingerprint() throws {
        let model = try ClassifierFixture(directory: tmp + "/model")
        try ShardWriter.shard(model.directory, into: 2)
        let r = try inspect(model.directory)
        XCTAssertTrue(r["fingerprint"] is NSNull)
        let weights = r["weights"] as! [String: Any]
        XCTAssertEqual((weights["files"] as! [String]).map { ($0 as NSString).lastPathComponent },
                       ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        XCTAssertEqual(weights["parameters"] as? Int, model.encoder.parameters.count)
    }
}

/// Rewrites a model directory's model.safetensors as `count` shards plus
/// model.safetensors.index.json, the layout Hugging Face's save_pretrained uses for large models.
enum ShardWriter {
    static func shard(_ directory: String, into count: Int) throws {
        let file = try SafeTensorsFile(path: directory + "/model.safetensors")
        var map: [String: String] = [:]
        let perShard = (file.names.count + count - 1) / count
        for s in 0..<count {
            let name = String(format: "model-%05d-of-%05d.safetensors", s + 1, count)
            let names = Array(file.names.dropFirst(s * perShard).prefix(perShard))
            try SafeTensorsWriter.write(tensors: try names.map { ($0, try file.floatTensor($0)) }, to: directory + "/" + name)
            for n in names { map[n] = name }
        }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map])
        try index.write(to: URL(fileURLWithPath: directory + "/model.safetensors.index.json"))
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
    }
}
