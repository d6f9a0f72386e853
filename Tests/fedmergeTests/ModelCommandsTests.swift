// The model commands as a user runs them: the built `fedmerge` executable fine-tunes a tiny
// random BERT on a toy JSONL task, then `stats`, `predict` and `embed` run on its output.

import Foundation
import LinAlg
import Model
import SafeTensors
import XCTest

final class ModelCommandsTests: XCTestCase {
    var tmp = ""

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fedmerge-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    /// Runs fedmerge with `arguments`; returns stdout, failing the test on a non-zero exit.
    func run(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try FedmergeProcess.run(arguments)
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        return result.stdout
    }

    func writeToyTask() throws {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "a", "movie", "plot", "was", "good", "great", "bad", "awful"]
        try (vocab.joined(separator: "\n") + "\n").write(toFile: tmp + "/vocab.txt", atomically: true, encoding: .utf8)
        let base = BertEncoder(config: BertConfig(vocabSize: vocab.count, hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2,
                                                  intermediateSize: 32, maxPositionEmbeddings: 16), seed: 1)
        try ModelDirectory.save(base, to: tmp + "/base", tokenizerSource: tmp)
        var rng = SplitMix64(seed: 9)
        func lines(_ n: Int) -> String {
            (0..<n).map { i -> String in
                let positive = i % 2 == 0
                let word = (positive ? ["good", "great"] : ["bad", "awful"])[Int(rng.next() % 2)]
                let text = ["the", "a"][Int(rng.next() % 2)] + " " + ["movie", "plot"][Int(rng.next() % 2)] + " was " + word
                return "{\"text\": \"\(text)\", \"label\": \"\(positive ? "pos" : "neg")\"}"
            }.joined(separator: "\n") + "\n"
        }
        try lines(64).write(toFile: tmp + "/train.jsonl", atomically: true, encoding: .utf8)
        try lines(24).write(toFile: tmp + "/test.jsonl", atomically: true, encoding: .utf8)
    }

    func testFinetuneThenStatsPredictAndEmbedOnAToyTask() throws {
        try writeToyTask()
        let finetune = try run(["finetune", "--model", tmp + "/base", "--train", tmp + "/train.jsonl", "--test", tmp + "/test.jsonl",
                                "--out", tmp + "/tuned", "--epochs", "10", "--lr", "3e-3", "--batch-size", "8", "--max-len", "16"])
        let metrics = try JSONSerialization.jsonObject(with: Data(finetune.split(separator: "\n").last!.utf8)) as! [String: Any]
        XCTAssertGreaterThanOrEqual(metrics["test_accuracy"] as! Double, 0.9, finetune)
        XCTAssertEqual(metrics["test_examples"] as? Int, 24)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tmp + "/tuned/config.json"))) as! [String: Any]
        XCTAssertEqual(config["id2label"] as? [String: String], ["0": "neg", "1": "pos"])

        _ = try run(["stats", "--model", tmp + "/tuned", "--data", tmp + "/train.jsonl", "--out", tmp + "/stats.safetensors",
                     "--gram-batches", "2", "--fisher-examples", "3", "--kfac-examples", "2", "--batch-size", "4"])
        let stats = try SafeTensorsFile(path: tmp + "/stats.safetensors")
        XCTAssertEqual(stats.metadata["train.label_counts"], "[32,32]")
        XCTAssertEqual(stats.entry("bert.encoder.layer.0.output.dense.gram")?.shape, [32, 32])
        XCTAssertEqual(stats.entry("classifier.weight.fisher")?.shape, [2, 16])
        XCTAssertNotNil(stats.entry("bert.pooler.dense.kfac_out"))

        let predicted = try run(["predict", "--model", tmp + "/tuned", "--text", "the movie was great", "--text", "a plot was awful"])
        let objects = try predicted.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        XCTAssertEqual(objects.map { $0["label"] as? String }, ["pos", "neg"])
        let rows = objects.map { $0["probabilities"] as! [String: Double] }
        XCTAssertEqual(rows.count, 2)
        XCTAssertGreaterThan(rows[0]["pos"]!, 0.5)
        XCTAssertGreaterThan(rows[1]["neg"]!, 0.5)
        for r in rows { XCTAssertEqual(r.values.reduce(0, +), 1, accuracy: 1e-5) }

        let embedded = try run(["embed", "--model", tmp + "/tuned", "--text", "the movie", "--text", "good"])
        let vectors = try embedded.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [Double] }
        XCTAssertEqual(vectors.map(\.count), [16, 16])
        for v in vectors { XCTAssertEqual(v.map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-5) }
    }

    func testFinetuneRefusesAMissingModelDirectoryNamingTheFile() throws {
        let result = try FedmergeProcess.run(["finetune", "--model", tmp + "/nowhere", "--train", tmp + "/train.jsonl", "--out", tmp + "/out"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains(tmp + "/nowhere/config.json"), result.stderr)
    }

    func testStatsRefusesZeroWorkersBeforeWritingAnything() throws {
        let out = tmp + "/stats.safetensors"
        let result = try FedmergeProcess.run(["stats", "--model", tmp + "/nowhere", "--data", tmp + "/train.jsonl", "--out", out, "--workers", "0"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.stderr.contains("--workers 0"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
