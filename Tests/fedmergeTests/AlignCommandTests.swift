// Tests of `fedmerge align` as a process: a randomly permuted copy of a saved model, aligned to
// the original on a text file, is written back with the original's weights exactly, plus
// alignment.json; models of different shapes are refused with the field named.

import Alignment
import Foundation
import LinAlg
import Model
import SafeTensors
import XCTest

final class AlignCommandTests: XCTestCase {
    private var root: String!

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "fedmerge-align-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    func testAligningAPermutedCopyRestoresTheOriginalWeights() throws {
        let a = try ClassifierFixture(directory: root + "/a", heads: 4)
        let config = a.encoder.config
        var rng = SplitMix64(seed: 4)
        var p = BertPermutation(identity: config)
        for l in 0..<config.numHiddenLayers {
            p.layers[l].feedForward = Permutation(random: config.intermediateSize, using: &rng)
            let inner = (0..<config.numAttentionHeads).map { _ in Permutation(random: config.headSize, using: &rng) }
            let innerV = (0..<config.numAttentionHeads).map { _ in Permutation(random: config.headSize, using: &rng) }
            let heads = Permutation(random: config.numAttentionHeads, using: &rng)
            p.layers[l].queryKey = Permutation.heads(heads, inner: inner, headSize: config.headSize)
            p.layers[l].value = Permutation.heads(heads, inner: innerV, headSize: config.headSize)
        }
        p.setResidual(Permutation(random: config.hiddenSize, using: &rng))
        let b = try ModelDirectory.load(a.directory)
        try p.apply(to: b)
        try ModelDirectory.save(b, to: root + "/b", tokenizerSource: a.directory)
        try (ClassifierFixture.texts(120).joined(separator: "\n") + "\n").write(toFile: root + "/texts.txt", atomically: true, encoding: .utf8)

        let run = try FedmergeProcess.run(["align", "--reference", root + "/a", "--model", root + "/b", "--data", root + "/texts.txt",
                                           "--out", root + "/c", "--attention", "head_perm", "--residual", "all", "--batch-size", "7"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("on 120 texts"), run.stdout)
        let original = try SafeTensorsCheckpoint(directory: root + "/a"), aligned = try SafeTensorsCheckpoint(directory: root + "/c")
        XCTAssertEqual(Set(aligned.names), Set(original.names))
        for name in original.names { XCTAssertEqual(try aligned.floatTensor(name), try original.floatTensor(name), name) }
        XCTAssertEqual(FileManager.default.contents(atPath: root + "/c/vocab.txt"), FileManager.default.contents(atPath: root + "/a/vocab.txt"))
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/c/alignment.json"))) as? [String: Any]
        let gathers = try XCTUnwrap((report?["permutation"] as? [String: Any])?["embeddings"] as? [Int])
        XCTAssertEqual(gathers, p.embeddings.inverse.indices)

        // An existing --out is kept unless --overwrite.
        let again = try FedmergeProcess.run(["align", "--reference", root + "/a", "--model", root + "/b", "--data", root + "/texts.txt",
                                             "--out", root + "/c"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("--overwrite"), again.stderr)
    }

    func testVariantsFromOnePassEqualSeparateRuns() throws {
        // Two different models (not a permuted copy), so the choices give different permutations.
        let a = try ClassifierFixture(directory: root + "/a", heads: 4)
        let b = try ClassifierFixture(directory: root + "/b", heads: 4, seed: 9)
        try (ClassifierFixture.texts(60).joined(separator: "\n") + "\n").write(toFile: root + "/texts.txt", atomically: true, encoding: .utf8)
        let common: [String] = ["align", "--reference", a.directory, "--model", b.directory, "--data", root + "/texts.txt"]
        let dDir: String = root + "/d", eDir: String = root + "/e"
        let variants: [String] = ["--out", root + "/c", "--variant", "monotonic,identity,match=" + dDir, "--variant", "vanilla,all,identity=" + eDir]
        let once = try FedmergeProcess.run(common + variants)
        XCTAssertEqual(once.status, 0, once.stderr)
        let cases: [([String], String)] = [(["monotonic", "identity", "match"], "/d"), (["vanilla", "all", "identity"], "/e")]
        for (choices, variantDirectory) in cases {
            let separate = root + "/separate-" + choices.joined(separator: "-")
            let run = try FedmergeProcess.run(common + ["--out", separate, "--attention", choices[0], "--residual", choices[1],
                                                        "--feed-forward", choices[2]])
            XCTAssertEqual(run.status, 0, run.stderr)
            let one = try SafeTensorsCheckpoint(directory: separate), other = try SafeTensorsCheckpoint(directory: root + variantDirectory)
            for name in one.names { XCTAssertEqual(try other.floatTensor(name), try one.floatTensor(name), "\(choices): \(name)") }
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + variantDirectory + "/alignment.json"))) as? [String: Any]
            XCTAssertEqual(report?["feedForward"] as? String, choices[2])
        }
        // The choices really differ: head_perm/all/match (the --out) moved other units than vanilla/all/identity.
        let c = try SafeTensorsCheckpoint(directory: root + "/c"), e = try SafeTensorsCheckpoint(directory: root + "/e")
        XCTAssertNotEqual(try c.floatTensor("bert.encoder.layer.0.intermediate.dense.weight"), try e.floatTensor("bert.encoder.layer.0.intermediate.dense.weight"))

        let bad = try FedmergeProcess.run(common + ["--out", root + "/f", "--variant", "head_perm,middle,match=" + root + "/g"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("residual 'middle'"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/f"))
    }

    func testModelsOfDifferentShapesAreRefusedNamingTheField() throws {
        _ = try ClassifierFixture(directory: root + "/a")
        _ = try ClassifierFixture(directory: root + "/b", intermediate: 24)
        try "the movie was good\n".write(toFile: root + "/texts.txt", atomically: true, encoding: .utf8)
        let run = try FedmergeProcess.run(["align", "--reference", root + "/a", "--model", root + "/b", "--data", root + "/texts.txt",
                                           "--out", root + "/c"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("intermediate_size"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/c"))
    }
}

/// `fedmerge barrier` as a process: a model against itself has barrier 0 and both files appear.
final class BarrierCommandTests: XCTestCase {
    func testBarrierOfAModelWithItselfIsZero() throws {
        let root = NSTemporaryDirectory() + "fedmerge-barrier-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let a = try ClassifierFixture(directory: root + "/a")
        let texts = ClassifierFixture.texts(30)
        let lines = texts.enumerated().map { "{\"text\": \"\($0.element)\", \"label\": \"\(["neg", "neu", "pos"][$0.offset % 3])\"}" }
        try (lines.joined(separator: "\n") + "\n").write(toFile: root + "/test.jsonl", atomically: true, encoding: .utf8)
        let run = try FedmergeProcess.run(["barrier", a.directory, a.directory, "--data", root + "/test.jsonl", "--out", root + "/curve"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let csv = try String(contentsOfFile: root + "/curve/barrier.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 12)
        let losses = csv.dropFirst().map { Double($0.split(separator: ",")[1])! }
        for l in losses { XCTAssertEqual(l, losses[0], accuracy: 1e-5) }
        XCTAssertTrue(run.stdout.contains("on 30 examples"), run.stdout)
        XCTAssertTrue(try String(contentsOfFile: root + "/curve/barrier.svg", encoding: .utf8).contains("<polyline"))
    }
}
