// The experiment's fine-tuned model cache with real agents: a model stored after one round
// and restored into a fresh agent work directory is reused by the agent (no "fine-tuning"
// line in its log), and a changed training recipe misses the cache and fine-tunes again.

import struct Experiment.FinetuneCache
import Foundation
import XCTest

final class FinetuneCacheTests: FederationTestCase {
    func runRound(_ f: Federation, tag: String) throws {
        for d in ["spool", "output"] { try? FileManager.default.removeItem(atPath: f.root + "/" + d) }
        try f.start("aggregator-" + tag, ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start("\(agent)-\(tag)", ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }
        XCTAssertEqual(f.wait("aggregator-" + tag), 0, "round \(tag) completes")
        for agent in ["a", "b"] { XCTAssertEqual(f.wait("\(agent)-\(tag)", limit: 60), 0, "agent \(agent) finishes round \(tag)") }
    }

    /// The key of agent `agent`'s model as the runner computes it; the recipe is writeAgentConfig's.
    func key(_ f: Federation, _ agent: String, epochs: Int = 2) throws -> String {
        try FinetuneCache.key(trainFile: f.root + "/data/\(agent)/train.csv", seed: 3, epochs: epochs, learningRate: 1e-3, batchSize: 16,
                              maxLength: 16, labels: ["negative", "positive"], baseModel: f.root + "/base")
    }

    func testSecondRunReusesTheCachedModelAndAChangedRecipeDoesNot() throws {
        let f = try Federation.make("finetune-cache", agents: ["a", "b"])
        federation = f
        try f.writeAggregatorConfig(subset: ["a", "b"], allow: ["a", "b"], methods: "    - {merge_method: regmean}")
        let cache = FinetuneCache(directory: f.root + "/cache")

        try runRound(f, tag: "first")
        XCTAssertTrue(f.log("a-first").contains("fine-tuning"), f.log("a-first"))
        for agent in ["a", "b"] {
            XCTAssertFalse(try cache.restore(agent: agent, key: key(f, agent), into: f.root + "/unused"), "empty cache")
            try cache.store(agent: agent, key: key(f, agent), from: f.root + "/work/\(agent)/prepared")
        }
        let stored = try FileManager.default.contentsOfDirectory(atPath: f.root + "/cache")
        XCTAssertEqual(stored.count, 2, "\(stored)")
        XCTAssertEqual(try String(contentsOfFile: f.root + "/cache/\(stored.sorted()[0])/cache-key.txt", encoding: .utf8), try key(f, "a"),
                       "the key is written beside the model")
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/cache/\(stored.sorted()[0])/stats.safetensors"), "statistics are not cached")

        // A second run in fresh agent work directories: the cache restores, the agents reuse.
        try FileManager.default.removeItem(atPath: f.root + "/work")
        for agent in ["a", "b"] { XCTAssertTrue(try cache.restore(agent: agent, key: key(f, agent), into: f.root + "/work/\(agent)/prepared")) }
        try runRound(f, tag: "second")
        for agent in ["a", "b"] {
            XCTAssertFalse(f.log("\(agent)-second").contains("fine-tuning"), f.log("\(agent)-second"))
            XCTAssertTrue(f.log("\(agent)-second").contains("reusing the fine-tuned model"), f.log("\(agent)-second"))
        }

        // A changed recipe (3 epochs): no cache entry has its key, and the agent fine-tunes.
        try FileManager.default.removeItem(atPath: f.root + "/work")
        for agent in ["a", "b"] {
            XCTAssertFalse(try cache.restore(agent: agent, key: key(f, agent, epochs: 3), into: f.root + "/work/\(agent)/prepared"))
            let path = f.root + "/agent-\(agent).yaml"
            try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "epochs: 2", with: "epochs: 3")
                .write(toFile: path, atomically: true, encoding: .utf8)
        }
        try runRound(f, tag: "third")
        for agent in ["a", "b"] { XCTAssertTrue(f.log("\(agent)-third").contains("fine-tuning"), f.log("\(agent)-third")) }
    }
}
