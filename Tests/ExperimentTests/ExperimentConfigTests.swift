// ExperimentConfig: a bad value is reported with the file and the key at fault.

import DaemonSupport
import Experiment
import Foundation
import XCTest

final class ExperimentConfigTests: XCTestCase {
    func load(_ yaml: String) throws -> ExperimentConfig {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("exp-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.yaml").path
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        return try ExperimentConfig.load(file: file)
    }

    let valid = """
    name: t
    setting: noniid
    base_model: base
    workdir: w
    results: r
    train: {epochs: 1}
    sizes: {train: 10, validation: 5, test: 5}
    members:
      - {name: trec, corpus: trec, input: q.txt}
    """

    func testValidConfigResolvesPathsAndDefaults() throws {
        let c = try load(valid)
        XCTAssertEqual(c.setting, .noniid)
        XCTAssertEqual(c.agentSeeds, [1, 1])      // two partitions, data seed 1 by default
        XCTAssertEqual(c.alphas, [0.1, 0.5, 0.9, 1.0])
        XCTAssertTrue(c.members[0].input.hasSuffix("/q.txt") && c.members[0].input.hasPrefix("/"))
    }

    func testUnknownSettingNamesTheKey() {
        XCTAssertThrowsError(try load(valid.replacingOccurrences(of: "setting: noniid", with: "setting: iid"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bad.yaml") && text.contains("setting") && text.contains("noniid"), text)
        }
    }

    func testWrongNumberOfAgentSeedsNamesTheKey() {
        XCTAssertThrowsError(try load(valid + "\nagent_seeds: [1, 2, 3]\n")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("agent_seeds") && text.contains("2 integers"), text)
        }
    }

    func testSeedsRepeatTheRunWithEveryAgentOnThatSeed() throws {
        let one = try load(valid)
        XCTAssertEqual(one.runs, [ExperimentConfig.Run(seed: 1, agentSeeds: [1, 1])])   // today's single run
        XCTAssertEqual(one.mtlMaxEpochs, 3)
        let c = try load(valid + "\nseeds: [1, 2, 3]\n")
        XCTAssertEqual(c.runs.map(\.seed), [1, 2, 3])
        XCTAssertEqual(c.runs.map(\.agentSeeds), [[1, 1], [2, 2], [3, 3]])
        XCTAssertEqual(c.seed, 1, "the data seed does not vary")
    }

    func testAgentSeedOffsetsGiveEveryRunDistinctHeadInitialisations() throws {
        let c = try load(valid + "\nseeds: [1, 2, 3]\nagent_seed_offsets: [0, 100]\n")
        XCTAssertEqual(c.runs.map(\.seed), [1, 2, 3])
        XCTAssertEqual(c.runs.map(\.agentSeeds), [[1, 101], [2, 102], [3, 103]])
        for extra in ["\nagent_seed_offsets: [0, 100]\n", "\nseeds: [1, 2]\nagent_seed_offsets: [0, 1, 2]\n", "\nseeds: [1, 2]\nagent_seed_offsets: [0, -1]\n"] {
            XCTAssertThrowsError(try load(valid + extra)) { error in
                XCTAssertTrue("\(error)".contains("bad.yaml") && "\(error)".contains("agent_seed_offsets"), "\(error)")
            }
        }
    }

    func testSeedsWithAgentSeedsOrRepeatedSeedsNameTheKey() {
        for extra in ["\nseeds: [1, 2]\nagent_seeds: [1, 2]\n", "\nseeds: [1, 1]\n", "\nseeds: [1, x]\n"] {
            XCTAssertThrowsError(try load(valid + extra)) { error in
                XCTAssertTrue("\(error)".contains("bad.yaml") && "\(error)".contains("seeds"), "\(error)")
            }
        }
    }

    /// The committed configs load; the ones meant for reports run three seeds on ≥ 400 test items.
    func testCommittedConfigsLoad() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("configs/experiments")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertGreaterThanOrEqual(files.count, 5)
        for file in files {
            let c = try ExperimentConfig.load(file: dir.appendingPathComponent(file).path)
            if !c.name.hasPrefix("tiny-") { XCTAssertGreaterThanOrEqual(c.testSize, 400, file) }
            if ["vader-domains", "vader-domains-heads", "different-tasks", "noniid-partitions"].contains(c.name) { XCTAssertEqual(c.runs.map(\.seed), [1, 2, 3], file) }
        }
    }

    func testTwoDatasetsForNonIIDIsAnError() {
        XCTAssertThrowsError(try load(valid + "\n  - {name: sms, corpus: sms-spam, input: s.csv}\n")) { error in
            XCTAssertTrue("\(error)".contains("members"), "\(error)")
        }
    }
}
