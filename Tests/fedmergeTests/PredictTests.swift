// `fedmerge predict` on files as a user runs it: every text's probabilities, in input order,
// equal the model run on that text alone, whatever the format and batching; bad input is named
// with its line and leaves no output file; 10k lines stay under the memory bound --help states.

import Foundation
import LinAlg
import Model
import XCTest

final class PredictTests: XCTestCase {
    var tmp = ""

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "fedmerge-predict-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func objects(_ jsonLines: String) throws -> [[String: Any]] {
        try jsonLines.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    func testPredictFileMatchesEachTextRunAloneInInputOrderInEveryFormat() throws {
        let model = try ClassifierFixture(directory: tmp + "/model")
        let texts = ClassifierFixture.texts(230)
        try (texts.joined(separator: "\n") + "\n").write(toFile: tmp + "/in.txt", atomically: true, encoding: .utf8)
        // Small windows and batches: several windows, each sorted by length, must come back in order.
        let plan = ["--window", "50", "--batch-size", "7", "--batch-tokens", "64", "--max-len", "16"]
        let run = try FedmergeProcess.run(["predict", "--model", model.directory, "--input", tmp + "/in.txt"] + plan)
        XCTAssertEqual(run.status, 0, run.stderr)
        let rows = try objects(run.stdout)
        XCTAssertEqual(rows.count, texts.count)
        for (i, row) in rows.enumerated() {
            XCTAssertEqual(row["line"] as? Int, i + 1)
            let expected = try model.probabilities(texts[i])
            let got = row["probabilities"] as! [String: Double]
            for (k, name) in model.encoder.config.labels.enumerated() {
                XCTAssertEqual(got[name]!, Double(expected[k]), accuracy: 1e-5, "line \(i + 1) label \(name)")
            }
            XCTAssertEqual(row["label"] as? String, model.encoder.config.labels[expected.indices.max { expected[$0] < expected[$1] }!])
        }

        // The same texts as CSV (with a quoted comma and a quote), JSONL and stdin give the same answers.
        var csv = "id,text\n", jsonl = ""
        for (i, t) in texts.enumerated() {
            csv += "\(i),\"\(t)\"\n"
            jsonl += String(decoding: try JSONSerialization.data(withJSONObject: ["text": t, "id": i]), as: UTF8.self) + "\n"
        }
        try csv.write(toFile: tmp + "/in.csv", atomically: true, encoding: .utf8)
        try jsonl.write(toFile: tmp + "/in.jsonl", atomically: true, encoding: .utf8)
        let reference = try objects(run.stdout)
        func assertSameAnswers(_ out: String, _ what: String) throws {
            let rows = try objects(out)
            XCTAssertEqual(rows.count, reference.count, what)
            for (row, expected) in zip(rows, reference) {
                XCTAssertEqual(row["label"] as? String, expected["label"] as? String, what)
                let (p, q) = (row["probabilities"] as! [String: Double], expected["probabilities"] as! [String: Double])
                for (name, value) in q { XCTAssertEqual(p[name]!, value, accuracy: 1e-5, what) }
            }
        }
        // One worker (batches in turn) and three (each batch on its own thread) answer alike.
        for (input, workers) in [(tmp + "/in.csv", "1"), (tmp + "/in.jsonl", "3")] {
            let other = try FedmergeProcess.run(["predict", "--model", model.directory, "--input", input, "--workers", workers] + plan)
            XCTAssertEqual(other.status, 0, other.stderr)
            try assertSameAnswers(other.stdout, input)
        }
        // stdin, default batching, into a file.
        let piped = try FedmergeProcess.run(["predict", "--model", model.directory, "--input", "-", "--output", tmp + "/out.jsonl"],
                                            stdin: texts.joined(separator: "\n"))
        XCTAssertEqual(piped.status, 0, piped.stderr)
        try assertSameAnswers(try String(contentsOfFile: tmp + "/out.jsonl", encoding: .utf8), "stdin")
    }

    func testPredictRefusesBadInputNamingFileAndLineAndWritesNothing() throws {
        let model = try ClassifierFixture(directory: tmp + "/model")
        let cases: [(name: String, bytes: [UInt8], message: String)] = [
            ("empty.txt", [], "empty.txt: no examples"),
            ("blank.txt", Array("\n  \n".utf8), "blank.txt: no examples"),
            ("notext.csv", Array("id,body\n1,the movie\n".utf8), "notext.csv: no column \"text\""),
            ("latin1.txt", Array("the movie\na plot\nd".utf8) + [0xE9, 0x6A, 0xE0] + Array("\n".utf8), "latin1.txt:3: not valid UTF-8"),
            ("latin1.csv", Array("text\nthe movie\n".utf8) + [0xFF] + Array("\n".utf8), "latin1.csv:3: not valid UTF-8"),
            ("latin1.jsonl", Array("{\"text\": \"the movie\"}\n{\"text\": \"".utf8) + [0xE9] + Array("\"}\n".utf8), "latin1.jsonl:2: not valid UTF-8"),
            ("broken.jsonl", Array("{\"text\": \"the movie\"}\n{\"txt\": \"a plot\"}\n".utf8), "broken.jsonl:2: field \"text\" missing"),
        ]
        for c in cases {
            FileManager.default.createFile(atPath: tmp + "/" + c.name, contents: Data(c.bytes))
            let out = tmp + "/" + c.name + ".out"
            let run = try FedmergeProcess.run(["predict", "--model", model.directory, "--input", tmp + "/" + c.name, "--output", out])
            XCTAssertNotEqual(run.status, 0, c.name)
            XCTAssertTrue(run.stderr.contains(c.message), "\(c.name): \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(c.name): a failed run left \(out)")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "temporary output files left behind")
    }

    func testPredictOnTenThousandLinesStaysUnderTheMemoryBoundItsHelpStates() throws {
        let model = try ClassifierFixture(directory: tmp + "/model", hidden: 32, layers: 2, intermediate: 64, heads: 4, maxPositions: 64)
        let texts = ClassifierFixture.texts(10_000, maxWords: 16, seed: 11)
        try (texts.joined(separator: "\n") + "\n").write(toFile: tmp + "/in.txt", atomically: true, encoding: .utf8)
        let run = try FedmergeProcess.run(["predict", "--model", model.directory, "--input", tmp + "/in.txt", "--max-len", "64",
                                           "--workers", "2", "--output", tmp + "/out.jsonl"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = try String(contentsOfFile: tmp + "/out.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 10_000)

        // The bound --help states, evaluated for this model and the defaults.
        let help = try FedmergeProcess.run(["predict", "--help"]).stdout.replacingOccurrences(of: "\n", with: " ")
            .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        XCTAssertTrue(help.contains("Peak memory is at most 128 MiB + 2 × the weights file + 4 bytes × (batch-tokens × "
                                    + "(12·hidden + 2·intermediate + 12 + heads·max-len) + window × (max-len + 8 + labels) "
                                    + "+ workers × batch-size × (4·hidden + 3·labels))"), help)
        let c = model.encoder.config
        let weights = try FileManager.default.attributesOfItem(atPath: model.directory + "/model.safetensors")[.size] as! Int
        let (tokens, window, batch, maxLen, labels, workers) = (8192, 4096, 32, 64, c.numLabels, 2)
        let bound = (128 << 20) + 2 * weights + 4 * (tokens * (12 * c.hiddenSize + 2 * c.intermediateSize + 12 + c.numAttentionHeads * maxLen)
                                                      + window * (maxLen + 8 + labels) + workers * batch * (4 * c.hiddenSize + 3 * labels))
        XCTAssertGreaterThan(run.peakResidentBytes, 0, "no VmHWM was read from /proc")
        XCTAssertLessThan(run.peakResidentBytes, bound, "peak \(run.peakResidentBytes >> 20) MiB, bound \(bound >> 20) MiB")
        // Holding every text's activations at once (one 10k-text batch, all layers) would need
        // far more than the bound: the bound is a real constraint at this size.
        let longest = texts.map { model.tokenizer.encode($0, maxLength: maxLen).count }.max()!
        XCTAssertGreaterThan(10_000 * longest * (12 * c.hiddenSize + 2 * c.intermediateSize) * c.numHiddenLayers * 4, bound)
    }
}
