// `fedmerge evaluate` as a user runs it: its metrics equal those counted by hand from the model
// run on each text alone (sklearn's definitions), from a labelled JSONL or from texts plus a
// --labels file; a label outside the model's id2label is named with its line.

import Foundation
import Model
import XCTest

final class EvaluateTests: XCTestCase {
    var tmp = ""

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fedmerge-evaluate-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func testEvaluateEqualsMetricsCountedFromEachTextRunAlone() throws {
        let model = try ClassifierFixture(directory: tmp + "/model")
        let names = model.encoder.config.labels
        let texts = ClassifierFixture.texts(120, seed: 8)
        // Gold labels that agree with the model about half the time, written as names or indices.
        var gold: [Int] = [], predicted: [Int] = []
        var jsonl = "", labelLines = ""
        for (i, t) in texts.enumerated() {
            let p = try model.probabilities(t)
            let argmax = p.indices.max { p[$0] < p[$1] }!
            let label = i % 2 == 0 ? argmax : (argmax + i) % 3
            predicted.append(argmax)
            gold.append(label)
            let written: Any = i % 3 == 0 ? label : names[label]
            jsonl += String(decoding: try JSONSerialization.data(withJSONObject: ["text": t, "label": written]), as: UTF8.self) + "\n"
            labelLines += names[label] + "\n"
        }
        try jsonl.write(toFile: tmp + "/test.jsonl", atomically: true, encoding: .utf8)
        try (texts.joined(separator: "\n") + "\n").write(toFile: tmp + "/texts.txt", atomically: true, encoding: .utf8)
        try labelLines.write(toFile: tmp + "/labels.txt", atomically: true, encoding: .utf8)

        // The truth, counted here: confusion[truth][predicted], precision/recall/F1 per class.
        var confusion = [[Int]](repeating: [0, 0, 0], count: 3)
        for (t, p) in zip(gold, predicted) { confusion[t][p] += 1 }
        let tp = (0..<3).map { confusion[$0][$0] }
        let support = (0..<3).map { confusion[$0].reduce(0, +) }
        let predictedCount = (0..<3).map { c in confusion.reduce(0) { $0 + $1[c] } }
        let precision = (0..<3).map { predictedCount[$0] == 0 ? 0 : Double(tp[$0]) / Double(predictedCount[$0]) }
        let recall = (0..<3).map { Double(tp[$0]) / Double(support[$0]) }
        let f1 = (0..<3).map { Double(2 * tp[$0]) / Double(support[$0] + predictedCount[$0]) }

        for arguments in [["--data", tmp + "/test.jsonl"], ["--data", tmp + "/texts.txt", "--labels", tmp + "/labels.txt"]] {
            let run = try FedmergeProcess.run(["evaluate", "--model", model.directory, "--json", "--window", "40", "--batch-size", "8"] + arguments)
            XCTAssertEqual(run.status, 0, run.stderr)
            let r = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(r["examples"] as? Int, 120)
            XCTAssertEqual(r["confusion_matrix"] as? [[Int]], confusion)
            XCTAssertEqual(r["accuracy"] as! Double, Double(tp.reduce(0, +)) / 120, accuracy: 1e-12)
            XCTAssertEqual(r["macro_f1"] as! Double, f1.reduce(0, +) / 3, accuracy: 1e-12)
            let perClass = r["per_class"] as! [[String: Any]]
            XCTAssertEqual(perClass.map { $0["label"] as? String }, names)
            for c in 0..<3 {
                XCTAssertEqual(perClass[c]["precision"] as! Double, precision[c], accuracy: 1e-12)
                XCTAssertEqual(perClass[c]["recall"] as! Double, recall[c], accuracy: 1e-12)
                XCTAssertEqual(perClass[c]["support"] as? Int, support[c])
            }
        }
        let table = try FedmergeProcess.run(["evaluate", "--model", model.directory, "--data", tmp + "/test.jsonl"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains(String(format: "accuracy %.4f", Double(tp.reduce(0, +)) / 120)), table.stdout)
        XCTAssertTrue(table.stdout.contains("confusion matrix (rows: true label, columns: predicted)"), table.stdout)
    }

    func testEvaluateRefusesALabelOutsideTheModelsLabelsNamingTheLine() throws {
        let model = try ClassifierFixture(directory: tmp + "/model")
        try "{\"text\": \"the movie\", \"label\": \"pos\"}\n{\"text\": \"a plot\", \"label\": \"maybe\"}\n"
            .write(toFile: tmp + "/bad.jsonl", atomically: true, encoding: .utf8)
        let run = try FedmergeProcess.run(["evaluate", "--model", model.directory, "--data", tmp + "/bad.jsonl"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("bad.jsonl:2: field \"label\": label \"maybe\" is not one of [neg, neu, pos]"), run.stderr)

        try "the movie\na plot\n".write(toFile: tmp + "/texts.txt", atomically: true, encoding: .utf8)
        try "pos\n".write(toFile: tmp + "/short.txt", atomically: true, encoding: .utf8)
        let short = try FedmergeProcess.run(["evaluate", "--model", model.directory, "--data", tmp + "/texts.txt", "--labels", tmp + "/short.txt"])
        XCTAssertNotEqual(short.status, 0)
        XCTAssertTrue(short.stderr.contains("short.txt has no label left for the record at \(tmp)/texts.txt:2"), short.stderr)
    }
}
