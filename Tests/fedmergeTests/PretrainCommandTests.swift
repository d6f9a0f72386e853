// `fedmerge pretrain` and `fedmerge barrier` on its models, as processes: a tiny run writes a
// loadable BertForMaskedLM directory and pretrain.json whose held-out loss is the one the saved
// model gets; the masked-LM barrier's ends are the two models' own masked-LM losses; a text
// argument with an unknown format is refused by name. The barrier's pseudo-perplexity column's
// ends are the models' own pseudo-perplexities.

import Foundation
import LinAlg
import Model
import XCTest

final class PretrainCommandTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "fedmerge-pretrain-cmd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/vocab", withIntermediateDirectories: true)
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ClassifierFixture.words
        try (vocab.joined(separator: "\n") + "\n").write(toFile: root + "/vocab/vocab.txt", atomically: true, encoding: .utf8)
        try (ClassifierFixture.texts(120).joined(separator: "\n") + "\n").write(toFile: root + "/texts.txt", atomically: true, encoding: .utf8)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func pretrain(_ out: String, seed: Int) throws {
        let run = try FedmergeProcess.run(["pretrain", "--out", out, "--seed", "\(seed)", "--text", "text:" + root + "/texts.txt",
                                           "--tokenizer", root + "/vocab", "--layers", "1", "--hidden", "16", "--heads", "2",
                                           "--ff", "32", "--max-len", "16", "--steps", "30", "--batch", "8", "--lr", "3e-3"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("final MLM loss"), run.stdout)
    }

    func testPretrainWritesALoadableModelAndBarrierScoresMaskedLM() throws {
        try pretrain(root + "/a", seed: 1)
        try pretrain(root + "/b", seed: 2)
        let a = try ModelDirectory.load(root + "/a"), b = try ModelDirectory.load(root + "/b")
        XCTAssertTrue(a.config.maskedLMHead)
        XCTAssertEqual(a.config.hiddenSize, 16)
        XCTAssertNotEqual(a.parameters.tensor("cls.predictions.bias"), b.parameters.tensor("cls.predictions.bias"))

        // pretrain.json's held-out loss is what the saved model scores on the held-out tail.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/a/pretrain.json"))) as! [String: Any]
        let tokenizer = try WordPieceTokenizer(vocabularyFile: root + "/vocab/vocab.txt")
        var corpus = PretrainingCorpus(texts: ClassifierFixture.texts(120), tokenizer: tokenizer, maxLength: 16)
        let held = corpus.holdOut(fraction: 0.02, limit: 512)
        let masking = try TokenMasking(tokenizer: tokenizer)
        let expected = try MaskedLMEvaluation.score(a, corpus: held, masking: masking, batchSize: 8, seed: 1)
        XCTAssertEqual(json["heldout_mlm_loss"] as! Double, expected.loss, accuracy: 1e-9)
        XCTAssertLessThan(json["final_mlm_loss"] as! Double, json["first_mlm_loss"] as! Double)

        let run = try FedmergeProcess.run(["barrier", root + "/a", root + "/b", "--data", "text:" + root + "/texts.txt",
                                           "--out", root + "/curve", "--max-len", "16", "--seed", "3", "--points", "5"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("masked-LM barrier"), run.stdout)
        let rows = try String(contentsOfFile: root + "/curve/barrier.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(rows.count, 5)
        let losses = rows.map { Double($0.split(separator: ",")[1])! }
        let all = PretrainingCorpus(texts: ClassifierFixture.texts(120), tokenizer: tokenizer, maxLength: 16)
        let lossB = try MaskedLMEvaluation.score(b, corpus: all, masking: masking, batchSize: 32, seed: 3).loss
        let lossA = try MaskedLMEvaluation.score(a, corpus: all, masking: masking, batchSize: 32, seed: 3).loss
        XCTAssertEqual(losses.first!, lossB, accuracy: 1e-6 * max(1, lossB))
        XCTAssertEqual(losses.last!, lossA, accuracy: 1e-6 * max(1, lossA))
        // The pseudo-perplexity column (default: the first 20 sequences) at the ends is each
        // model's own.
        XCTAssertTrue(try String(contentsOfFile: root + "/curve/barrier.csv", encoding: .utf8).hasPrefix(
            "lambda,loss,accuracy,excess_over_chord,pseudo_perplexity\n"))
        let pppl = rows.map { Double($0.split(separator: ",")[4])! }
        let ppplB = try PseudoPerplexity.score(b, corpus: all, masking: masking, sequences: 20).pseudoPerplexity
        let ppplA = try PseudoPerplexity.score(a, corpus: all, masking: masking, sequences: 20).pseudoPerplexity
        XCTAssertEqual(pppl.first!, ppplB, accuracy: 1e-5 * ppplB)
        XCTAssertEqual(pppl.last!, ppplA, accuracy: 1e-5 * ppplA)
        XCTAssertTrue(run.stdout.contains("pseudo-perplexity barrier"), run.stdout)
    }

    func testAnUnknownTextFormatIsRefusedByName() throws {
        let run = try FedmergeProcess.run(["pretrain", "--out", root + "/x", "--text", "orang-tab:" + root + "/texts.txt",
                                           "--tokenizer", root + "/vocab", "--steps", "1"])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("orang-tab"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/x"))
    }
}
