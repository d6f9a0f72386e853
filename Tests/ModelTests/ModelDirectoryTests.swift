// Saving and loading a model directory: a round trip keeps every parameter and the label
// names, the saved file has BertForSequenceClassification's (or BertForMaskedLM's) names (checked
// from Python with the `safetensors` package and a numpy forward), and a bad file is refused
// naming the tensor.

import Foundation
import LinAlg
@testable import Model
import SafeTensors
import XCTest

final class ModelDirectoryTests: XCTestCase {
    var tmp: String = ""

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fedmerge-modeldir-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp + "/src", withIntermediateDirectories: true)
        try "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n".write(toFile: tmp + "/src/vocab.txt", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func tinyClassifier() -> BertEncoder {
        let c = BertConfig(vocabSize: 30, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16,
                           maxPositionEmbeddings: 16, initializerRange: 0.5, labels: ["negative", "positive", "neutral"])
        return BertEncoder(config: c, seed: 3)
    }

    func testSaveThenLoadRoundTripsParametersAndLabels() throws {
        let m = tinyClassifier()
        try ModelDirectory.save(m, to: tmp + "/out", tokenizerSource: tmp + "/src")
        let back = try ModelDirectory.load(tmp + "/out")
        XCTAssertEqual(back.config.labels, ["negative", "positive", "neutral"])
        XCTAssertEqual(back.parameters.count, m.parameters.count)
        XCTAssertEqual(Array(back.parameters.values), Array(m.parameters.values))
        XCTAssertEqual(try String(contentsOfFile: tmp + "/out/vocab.txt", encoding: .utf8), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n")
        let names = try SafeTensorsFile(path: tmp + "/out/model.safetensors").names
        XCTAssertTrue(names.contains("bert.encoder.layer.1.output.dense.weight"))
        XCTAssertTrue(names.contains("classifier.weight"))
        XCTAssertFalse(names.contains { $0.hasPrefix("bert.classifier") })
        // No temporary files are left beside the real ones.
        let listing = try FileManager.default.contentsOfDirectory(atPath: tmp + "/out").sorted()
        XCTAssertEqual(listing, ["config.json", "model.safetensors", "vocab.txt"])
    }

    func testSavedModelIsBertForSequenceClassificationInPythonWithSameLogits() throws {
        let m = tinyClassifier()
        try ModelDirectory.save(m, to: tmp + "/out", tokenizerSource: tmp + "/src")
        let seqs: [[Int32]] = [[2, 4, 7, 3], [2, 9, 3], [2, 11, 12, 13, 14, 3]]
        try m.forward(try EncoderInput(sequences: seqs))
        let logits = m.logits, K = m.config.numLabels
        let cases = seqs.enumerated().map { b, ids in ["ids": ids.map(Int.init), "logits": (0..<K).map { Double(logits.storage[b * K + $0]) }] as [String: Any] }
        try JSONSerialization.data(withJSONObject: cases).write(to: URL(fileURLWithPath: tmp + "/cases.json"))

        try checkInPython("check_saved_model.py")
    }

    func testSavedMaskedLMIsBertForMaskedLMInPythonWithSameLogits() throws {
        let c = BertConfig(vocabSize: 30, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 16,
                           maxPositionEmbeddings: 16, initializerRange: 0.5, maskedLMHead: true)
        let m = BertEncoder(config: c, seed: 4)
        try ModelDirectory.save(m, to: tmp + "/out", tokenizerSource: tmp + "/src")
        let examples: [(ids: [Int32], positions: [Int32])] = [([2, 4, 7, 3], [1, 2]), ([2, 9, 11, 12, 13, 3], [0, 3, 4])]
        let cases: [[String: Any]] = try examples.map { ids, positions in
            let batch = MaskedTokens(input: try EncoderInput(sequences: [ids]), positions: positions, labels: positions.map { ids[Int($0)] })
            let logits = try m.maskedLMLogits(batch).storage
            return ["ids": ids.map(Int.init), "positions": positions.map(Int.init),
                    "logits": positions.indices.map { k in (0..<30).map { Double(logits[k * 30 + $0]) } }]
        }
        try JSONSerialization.data(withJSONObject: cases).write(to: URL(fileURLWithPath: tmp + "/cases.json"))
        try checkInPython("check_saved_mlm.py")
    }

    /// Runs Tests/Fixtures/model/`script` on tmp/out and tmp/cases.json (skipped without python3 + safetensors).
    private func checkInPython(_ script: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import safetensors.numpy"]
        try process.run(); process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw XCTSkip("python3 with `safetensors` not available (pip install safetensors)") }

        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", ModelAssets.fixtures + "/" + script, tmp + "/out", tmp + "/cases.json"]
        let pipe = Pipe()
        check.standardOutput = pipe
        try check.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        XCTAssertEqual(check.terminationStatus, 0, out)
        XCTAssertTrue(out.contains("\"ok\": true"), out)
    }

    func testLoadRefusesWrongShapeNamingTheTensor() throws {
        let m = tinyClassifier()
        try ModelDirectory.save(m, to: tmp + "/out", tokenizerSource: tmp + "/src")
        // Rewrite the weights with one tensor transposed.
        let file = try SafeTensorsFile(path: tmp + "/out/model.safetensors")
        var tensors: [(name: String, tensor: Tensor<Float>)] = []
        for n in file.names {
            var t = try file.floatTensor(n)
            if n == "bert.encoder.layer.0.intermediate.dense.weight" { t = t.transposed() }
            tensors.append((n, t))
        }
        try SafeTensorsWriter.write(tensors: tensors, to: tmp + "/out/model.safetensors")
        XCTAssertThrowsError(try ModelDirectory.load(tmp + "/out")) { error in
            XCTAssertEqual(error as? EncoderError, .tensorShapeMismatch(file: tmp + "/out/model.safetensors",
                tensor: "bert.encoder.layer.0.intermediate.dense.weight", expected: [16, 8], actual: [8, 16]))
        }
    }
}
