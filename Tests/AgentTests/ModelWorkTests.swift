// ModelWork's self-audit (`privacy: {self_audit: true}`): the step that prepares an agent's
// upload attacks the Grams it is about to upload and scores the attack against the agent's own
// training data. The agent here is a tiny BERT whose Gram provably determines its text (hidden 48
// holds more dimensions than the text has distinct token × position pairs, as in
// ModelTests.LayerZeroAuditTests), so the truth is known from the text alone: every word back,
// exactly.

@testable import Agent
import Foundation
import Logging
import Model
import XCTest

/// A log handler that keeps every message (the agent's real Logger writes through it).
final class KeptLog: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        lock.withLock { messages.append(message.description) }
    }
    var lines: [String] { lock.withLock { messages } }
}

final class ModelWorkTests: XCTestCase {
    private var root = ""
    private let texts = ["the movie was good", "bad plot", "the film is bad", "the story was very dull", "bad music", "great actor"]

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "model-work-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/model", withIntermediateDirectories: true)
        let words = ["the", "a", "movie", "plot", "good", "bad", "great", "dull", "film", "story", "actor", "scene",
                     "was", "is", "very", "not", "fun", "long", "short", "music", "end", "start", "slow", "fast"]
        try ((["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words).joined(separator: "\n") + "\n")
            .write(toFile: root + "/model/vocab.txt", atomically: true, encoding: .utf8)
        let config = BertConfig(vocabSize: 5 + words.count, hiddenSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
                                intermediateSize: 64, maxPositionEmbeddings: 16, labels: ["negative", "positive"])
        try ModelDirectory.save(BertEncoder(config: config, seed: 11), to: root + "/model", tokenizerSource: root + "/model")
        let csv = "text,label\n" + texts.enumerated().map { "\($1),\($0 % 2 == 0 ? "negative" : "positive")" }.joined(separator: "\n") + "\n"
        for name in ["train", "test"] { try csv.write(toFile: root + "/\(name).csv", atomically: true, encoding: .utf8) }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    /// An agent config over the fixture: the ready model, Grams of one batch of 8 (all 6
    /// texts), max_len 16, and `privacy` as given.
    private func work(privacy: String) throws -> ModelWork {
        let path = root + "/agent-\(UUID().uuidString).yaml"
        try """
        name: a
        aggregator: tcp://127.0.0.1:1
        tls: {ca: ca.pem, cert: a.pem, key: a.key}
        base_model: model
        finetuned: model
        data: {train: train.csv, test: test.csv, labels: [negative, positive]}
        stats: {gram_batches: 1, batch_size: 8}
        eval: {max_len: 16}
        workdir: work
        \(privacy)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return try ModelWork(config: try AgentConfig.load(file: path))
    }

    func testSelfAuditScoresTheGramsAboutToBeUploadedAgainstTheAgentsOwnData() throws {
        let log = KeptLog()
        let logger = Logger(label: "a") { _ in log }
        let prepared = root + "/work/prepared"
        try work(privacy: "privacy: {self_audit: true}").prepare(statistics: ["gram"], into: prepared, logger: logger)

        // The truth from the text alone: 14 distinct words, each a whole token.
        let words = Set(texts.flatMap { $0.split(separator: " ").map(String.init) })
        XCTAssertEqual(words.count, 14)
        let report = try JSONDecoder().decode(StatisticsAuditReport.self, from: Data(contentsOf: URL(fileURLWithPath: prepared + "/audit.json")))
        XCTAssertEqual(report.stats, prepared + "/stats.safetensors", "the audited file is the one the agent uploads")
        XCTAssertNil(report.noise)
        let score = try XCTUnwrap(report.layer0.score, "scored against the agent's own data")
        XCTAssertEqual(score.distinct, words.count)
        XCTAssertEqual(score.recallAtDistinct, 1)
        XCTAssertEqual(score.exactCounts, 1)
        XCTAssertEqual(report.layer0.exactMultiset, true)
        XCTAssertTrue(FileManager.default.fileExists(atPath: prepared + "/audit.svg"))
        let line = try XCTUnwrap(log.lines.first { $0.hasPrefix("self-audit before upload") }, "\(log.lines)")
        XCTAssertTrue(line.contains("recall@14 1.000"), line)

        // Prepared again (the daemon prepares before every merge): the audit of the same
        // statistics is reused, its line logged again.
        let again = KeptLog()
        try work(privacy: "privacy: {self_audit: true}").prepare(statistics: ["gram"], into: prepared, logger: Logger(label: "a") { _ in again })
        XCTAssertFalse(again.lines.contains { $0.hasPrefix("self-audit: attacking") }, "\(again.lines)")
        XCTAssertTrue(again.lines.contains { $0.hasPrefix("self-audit before upload") && $0.contains("recall@14 1.000") }, "\(again.lines)")
    }

    func testSelfAuditOfDPGramsAuditsTheNoisedUpload() throws {
        let prepared = root + "/work/prepared"
        try work(privacy: "privacy: {self_audit: true, gram_noise: {epsilon: 1, clip: 0.5}}")
            .prepare(statistics: ["gram"], into: prepared, logger: Logger(label: "a") { _ in KeptLog() })
        let report = try JSONDecoder().decode(StatisticsAuditReport.self, from: Data(contentsOf: URL(fileURLWithPath: prepared + "/audit.json")))
        XCTAssertEqual(report.noise?.epsilon, 1, "the noised Grams (what leaves the agent) are audited, not the exact ones")
        XCTAssertNotNil(report.layer0.score)
    }

    func testNoSelfAuditByDefault() throws {
        let prepared = root + "/work/prepared"
        try work(privacy: "").prepare(statistics: ["gram"], into: prepared, logger: Logger(label: "a") { _ in KeptLog() })
        XCTAssertTrue(FileManager.default.fileExists(atPath: prepared + "/stats.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: prepared + "/audit.json"))
    }
}
