// `fedmerge privacy-sweep` in the different-tasks setting: members read as experiment corpora,
// each with its own label set (two labels here, three there), merged with `heads: keep` and
// scored each with its own head. The truth for the scores: the merged encoder recomputed here
// by hand (the mean of the members' non-head tensors) with each member's own classifier,
// evaluated on that member's test file.

import Foundation
import LinAlg
import Model
import SafeTensors
import XCTest

final class PrivacySweepTests: XCTestCase {
    private var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "privacy-sweep-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    /// A sweep config over the toy base model: 40 training examples, max_len 8, ε ∈ {∞, 1}.
    private func config(_ file: String, members: [String], heads: String = "average") throws {
        try ([
            "title: toy tasks", "base_model: base", "workdir: work", "results: results",
            "train: {epochs: 1, lr: 1.0e-3, batch_size: 8, max_len: 8, seed: 1, max_examples: 40}",
            "stats: {gram_batches: 2}", "privacy: {delta: 1.0e-5, clip: 0.5, epsilons: [1]}", "heads: \(heads)",
            "eval_max_examples: 400", "audit_member: ab", "members:",
        ] + members.map { "  - " + $0 }).joined(separator: "\n").appending("\n").write(toFile: root + "/" + file, atomically: true, encoding: .utf8)
    }

    /// `name`-train.csv (60 rows) and `name`-test.csv (24 rows), labels cycling through `labels`.
    private func corpus(_ name: String, labels: [String], seed: UInt64) throws {
        for (file, count, s) in [("train", 60, seed), ("test", 24, seed + 1)] {
            let texts = ClassifierFixture.texts(count, maxWords: 6, seed: s)
            let rows = texts.enumerated().map { "\($1),\(labels[$0 % labels.count])" }
            try (["text,label"] + rows).joined(separator: "\n").appending("\n").write(toFile: root + "/\(name)-\(file).csv", atomically: true, encoding: .utf8)
        }
    }

    func testDifferentTasksAreMergedWithKeptHeadsAndEachScoredWithItsOwnHead() throws {
        _ = try ClassifierFixture(directory: root + "/base")
        try corpus("ab", labels: ["a", "b"], seed: 10)
        try corpus("pqr", labels: ["p", "q", "r"], seed: 20)
        try config("sweep.yaml", members: ["{name: ab, corpus: csv, input: ab-train.csv, test_input: ab-test.csv}",
                                           "{name: pqr, corpus: csv, input: pqr-train.csv, test_input: pqr-test.csv}"], heads: "keep")
        let run = try FedmergeProcess.run(["privacy-sweep", root + "/sweep.yaml"])
        XCTAssertEqual(run.status, 0, run.stderr)

        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/results/report.json"))) as? [[String: Any]])
        let average = try XCTUnwrap(rows.first { ($0["method"] as? String)?.hasPrefix("average") == true })
        let reported = try XCTUnwrap(average["accuracy"] as? [String: Double])

        // The average by hand: every tensor but the classifier is the mean of the two models'.
        let files = try ["ab", "pqr"].map { try SafeTensorsFile(path: root + "/work/models/\($0)/model.safetensors") }
        for (i, member) in ["ab", "pqr"].enumerated() {
            var tensors: [(name: String, tensor: Tensor<Float>)] = []
            for name in files[i].names {
                var t = try files[i].floatTensor(name)
                if !name.hasPrefix("classifier.") {
                    let other = try files[1 - i].floatTensor(name)
                    for k in t.storage.indices { t.storage[k] = (t.storage[k] + other.storage[k]) / 2 }
                }
                tensors.append((name, t))
            }
            let dir = root + "/by-hand/" + member
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try SafeTensorsWriter.write(tensors: tensors, to: dir + "/model.safetensors")
            for side in ["config.json", "vocab.txt"] {
                try FileManager.default.copyItem(atPath: root + "/work/models/\(member)/" + side, toPath: dir + "/" + side)
            }
            let model = try ModelDirectory.load(dir)
            XCTAssertEqual(model.config.labels.count, member == "ab" ? 2 : 3, "each member keeps its own label set")
            let test = try LabeledDataset.load(path: root + "/\(member)-test.csv", labelNames: model.config.labels)
            let truth = try Evaluation.evaluate(model, tokenizer: WordPieceTokenizer(vocabularyFile: dir + "/vocab.txt"), data: test, maxLength: 8)
            XCTAssertEqual(try XCTUnwrap(reported[member]), truth.accuracy, accuracy: 1e-9, member)
        }

        // RegMean at ε = ∞ and ε = 1 scored every member; the audit scored the ab member's Gram.
        let regmean = rows.filter { ($0["method"] as? String)?.hasPrefix("regmean") == true }
        XCTAssertEqual(regmean.count, 2)
        for r in regmean {
            XCTAssertEqual(Set((r["accuracy"] as? [String: Double] ?? [:]).keys), ["ab", "pqr"])
            XCTAssertNotNil(r["audit"])
        }
        let report = try String(contentsOfFile: root + "/results/report.md", encoding: .utf8)
        XCTAssertTrue(report.contains("Heads kept"), report)
    }

    func testAMemberWithBothACSVPairAndACorpusIsRefusedNamingTheKey() throws {
        try config("bad.yaml", members: ["{name: ab, train: a.csv, test: b.csv, corpus: csv, input: c.csv}"])
        let run = try FedmergeProcess.run(["privacy-sweep", root + "/bad.yaml"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("'members[0].train'"), run.stderr)
    }
}
