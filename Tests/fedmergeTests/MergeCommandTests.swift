// End-to-end tests of `fedmerge merge` (Sources/fedmerge/MergeCommand.swift): the built
// binary runs as a subprocess on small safetensors model directories written here.

import Foundation
import LinAlg
import SafeTensors
import XCTest

final class MergeCommandTests: XCTestCase {
    private var root: String!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "fedmerge-merge-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    private static func binary() throws -> String {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        candidates.append(Bundle.main.bundleURL)
        candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug"))
        for dir in candidates {
            for path in [dir.appendingPathComponent("fedmerge").path, dir.deletingLastPathComponent().appendingPathComponent("fedmerge").path]
            where FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("fedmerge binary not found; run `swift build` first")
    }

    /// Runs `fedmerge merge CONFIG --out OUT` in `root`; returns (status, stdout, stderr).
    private func runMerge(_ yaml: String, out: String = "merged", extra: [String] = []) throws -> (Int32, String, String) {
        try yaml.write(toFile: root + "/merge.yaml", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = ["merge", "merge.yaml", "--out", out] + extra
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        let (o, e) = (Pipe(), Pipe())
        process.standardOutput = o
        process.standardError = e
        try process.run()
        let outData = o.fileHandleForReading.readDataToEndOfFile()
        let errData = e.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    /// A model directory `name/` with lin (2×3) + bias, a classifier, a Gram for lin with
    /// diagonal `gramDiagonal` (off-diagonals 0.5) and Fishers; config.json and vocab.txt optional.
    @discardableResult
    private func writeModel(_ name: String, scale: Float, gramDiagonal: [Float], sideFiles: Bool = true,
                            prefix: String = "bert.", tamper: ((inout [(name: String, tensor: Tensor<Float>)]) -> Void)? = nil) throws -> [String: Tensor<Float>] {
        let dir = root + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var tensors: [(name: String, tensor: Tensor<Float>)] = [
            (prefix + "lin.weight", try Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6].map { $0 * scale })),
            (prefix + "lin.bias", try Tensor(shape: [2], storage: [scale, -scale])),
            ("classifier.weight", try Tensor(shape: [2, 2], storage: [1, 0, 0, 1].map { $0 * scale })),
        ]
        tamper?(&tensors)
        try SafeTensorsWriter.write(tensors: tensors, metadata: ["format": "pt"], to: dir + "/model.safetensors")
        var gram = Tensor<Float>(shape: [3, 3], repeating: 0.5)
        for i in 0..<3 { gram[i, i] = gramDiagonal[i] }
        let fishers = tensors.map { ($0.name + ".fisher", Tensor<Float>(shape: $0.tensor.shape, repeating: 1)) }
        try SafeTensorsWriter.write(tensors: [(prefix + "lin.gram", gram)] + fishers,
                                    metadata: [prefix + "lin.gram.num_rows": "2", "train.label_counts": "[3, 4]"],
                                    to: dir + "/stats.safetensors")
        if sideFiles {
            try #"{"model_type": "bert", "hidden_size": 3}"#.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            try "[PAD]\n[UNK]\nhello\n".write(toFile: dir + "/vocab.txt", atomically: true, encoding: .utf8)
        }
        return Dictionary(uniqueKeysWithValues: tensors.map { ($0.name, $0.tensor) })
    }

    private let twoModels = """
    models:
      - model: a
      - model: b
        parameters: {weight: 1.0}
    """

    func testRegMeanAlphaZeroWritesPerFeatureAverageReportAndSideFiles() throws {
        let a = try writeModel("a", scale: 1, gramDiagonal: [2, 4, 6])
        let b = try writeModel("b", scale: 3, gramDiagonal: [6, 4, 2])
        let (status, stdout, stderr) = try runMerge("merge_method: regmean\nparameters: {alpha: 0.0}\n" + twoModels)
        XCTAssertEqual(status, 0, stderr)
        XCTAssertTrue(stdout.contains("merged 2 models with regmean"), stdout)
        let merged = try SafeTensorsFile(path: root + "/merged/model.safetensors")
        // α = 0: column j is Σ G_jj W[:, j] / Σ G_jj (equal num_rows, so normalising cancels).
        let w = try merged.floatTensor("bert.lin.weight")
        let (da, db): ([Float], [Float]) = ([2, 4, 6], [6, 4, 2])
        for o in 0..<2 {
            for j in 0..<3 {
                let expected = (da[j] * a["bert.lin.weight"]![o, j] + db[j] * b["bert.lin.weight"]![o, j]) / (da[j] + db[j])
                XCTAssertEqual(w[o, j], expected, accuracy: 1e-5)
            }
        }
        XCTAssertEqual(try merged.floatTensor("bert.lin.bias").storage, [2, -2])
        XCTAssertEqual(try String(contentsOfFile: root + "/merged/vocab.txt", encoding: .utf8), "[PAD]\n[UNK]\nhello\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/merged/config.json"))
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/merged/merge-report.json"))) as! [String: Any]
        XCTAssertEqual(report["method"] as? String, "regmean")
        let entries = report["tensors"] as! [[String: Any]]
        let lin = entries.first { $0["name"] as? String == "bert.lin.weight" }!
        XCTAssertEqual(lin["solvePath"] as? String, "cholesky")
        XCTAssertNotNil(lin["conditionEstimate"] as? Double)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary directories left behind")
    }

    func testModelsWithoutConfigOrVocabStillMerge() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1], sideFiles: false)
        try writeModel("b", scale: 2, gramDiagonal: [1, 1, 1], sideFiles: false)
        let (status, _, stderr) = try runMerge("merge_method: average\n" + twoModels)
        XCTAssertEqual(status, 0, stderr)
        XCTAssertEqual(try SafeTensorsFile(path: root + "/merged/model.safetensors").floatTensor("bert.lin.bias").storage, [1.5, -1.5])
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/merged/config.json"))
    }

    func testKeepHeadsWritesPerModelHeadsAndRecordsThemInConfig() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1])
        try writeModel("b", scale: 2, gramDiagonal: [1, 1, 1])
        let (status, _, stderr) = try runMerge("merge_method: fisher\nparameters: {heads: keep}\n" + twoModels)
        XCTAssertEqual(status, 0, stderr)
        let merged = try SafeTensorsFile(path: root + "/merged/model.safetensors")
        XCTAssertEqual(try merged.floatTensor("classifier_b.weight").storage, [2, 0, 0, 2])
        XCTAssertFalse(merged.names.contains("classifier.weight"))
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/merged/config.json"))) as! [String: Any]
        XCTAssertEqual(config["fedmerge_heads"] as? [String: String], ["a": "classifier_a.", "b": "classifier_b."])
    }

    func testTaskArithmeticFindsBaseTensorsWithoutTheModelPrefix() throws {
        try writeModel("base", scale: 1, gramDiagonal: [1, 1, 1], prefix: "")
        try writeModel("a", scale: 2, gramDiagonal: [1, 1, 1])
        try writeModel("b", scale: 4, gramDiagonal: [1, 1, 1])
        let (status, _, stderr) = try runMerge("merge_method: task_arithmetic\nbase_model: base\nparameters: {lambda: 0.5}\n" + twoModels)
        XCTAssertEqual(status, 0, stderr)
        // base + 0.5 ((2−1) + (4−1)) · base_bias = 3 · (1, −1)
        XCTAssertEqual(try SafeTensorsFile(path: root + "/merged/model.safetensors").floatTensor("bert.lin.bias").storage, [3, -3])
    }

    private func expectFailure(_ yaml: String, mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let (status, _, stderr) = try runMerge(yaml)
        XCTAssertNotEqual(status, 0, file: file, line: line)
        for m in mentions { XCTAssertTrue(stderr.contains(m), "stderr lacks '\(m)': \(stderr)", file: file, line: line) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/merged"), "a failed merge must not create the output", file: file, line: line)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], file: file, line: line)
    }

    func testUnknownMethodListsKnownMethods() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1])
        try expectFailure("merge_method: slerp\nmodels: [{model: a}]\n", mentions: ["merge.yaml", "unknown merge_method 'slerp'", "regmean", "ties"])
    }

    func testMissingStatisticsFileNamesThePath() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1])
        try writeModel("b", scale: 1, gramDiagonal: [1, 1, 1])
        try FileManager.default.removeItem(atPath: root + "/b/stats.safetensors")
        try expectFailure("merge_method: regmean\n" + twoModels, mentions: ["model b", "b/stats.safetensors"])
    }

    func testShapeMismatchNamesTensorBothShapesAndModel() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1])
        try writeModel("b", scale: 1, gramDiagonal: [1, 1, 1]) { $0[2].tensor = Tensor(shape: [3, 2], repeating: 1) }
        try expectFailure("merge_method: average\n" + twoModels, mentions: ["model b", "classifier.weight", "(3×2)", "(2×2)"])
    }

    func testMissingTensorIsNamed() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1])
        try writeModel("b", scale: 1, gramDiagonal: [1, 1, 1]) { $0.removeLast() }
        try expectFailure("merge_method: average\n" + twoModels, mentions: ["model b", "no tensor 'classifier.weight'"])
    }

    func testNonFiniteWeightIsNamed() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1])
        try writeModel("b", scale: 1, gramDiagonal: [1, 1, 1]) { $0[1].tensor.storage[0] = .infinity }
        try expectFailure("merge_method: average\n" + twoModels, mentions: ["model b", "bert.lin.bias", "NaN or infinity"])
    }

    func testMalformedYAMLIsReported() throws {
        try expectFailure("merge_method: [unclosed\n", mentions: ["merge.yaml", "not valid YAML"])
    }

    func testExistingOutputIsKeptWithoutOverwrite() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1])
        try FileManager.default.createDirectory(atPath: root + "/merged", withIntermediateDirectories: true)
        try "keep me".write(toFile: root + "/merged/note.txt", atomically: true, encoding: .utf8)
        let (status, _, stderr) = try runMerge("merge_method: average\nmodels: [{model: a}]\n")
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(stderr.contains("already exists"), stderr)
        XCTAssertEqual(try String(contentsOfFile: root + "/merged/note.txt", encoding: .utf8), "keep me")
        let (again, _, err2) = try runMerge("merge_method: average\nmodels: [{model: a}]\n", extra: ["--overwrite"])
        XCTAssertEqual(again, 0, err2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/merged/note.txt"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/merged/model.safetensors"))
    }
}

extension MergeCommandTests {
    func testMaTSFisherDiagWithEqualFishersGivesTheWeightedAverage() throws {
        try writeModel("a", scale: 1, gramDiagonal: [1, 1, 1])
        try writeModel("b", scale: 3, gramDiagonal: [1, 1, 1])
        let (status, _, stderr) = try runMerge("merge_method: mats\nparameters: {objective: fisher_diag, init: regmean}\n" + twoModels)
        XCTAssertEqual(status, 0, stderr)
        let merged = try SafeTensorsFile(path: root + "/merged/model.safetensors")
        // Fisher ≡ 1 in both models: CG must land on the plain average from RegMean's start.
        for (got, expected) in zip(try merged.floatTensor("bert.lin.weight").storage, [Float(2), 4, 6, 8, 10, 12]) {
            XCTAssertEqual(got, expected, accuracy: 1e-5)
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/merged/merge-report.json"))) as! [String: Any]
        XCTAssertEqual(report["method"] as? String, "mats")
    }
}
