// End-to-end: an agent with `privacy: {gram_noise: …}` in a real round. Its Grams are noised and
// projected to PSD before upload, so the aggregator's plausibility check admits them and RegMean
// merges them with the exact Grams of the other agent.

import Foundation
import LinAlg
import SafeTensors
import XCTest

final class PrivateGramRoundTests: FederationTestCase {
    func testNoisyGramsFromADPAgentPassTheAggregatorAndMerge() throws {
        let f = try Federation.make("dp-round", agents: ["a", "b"])
        federation = f
        let path = f.root + "/agent-b.yaml"
        try (String(contentsOfFile: path, encoding: .utf8) + "\nprivacy: {gram_noise: {epsilon: 1, delta: 1.0e-5, clip: 0.5}}\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        try f.writeAggregatorConfig(subset: ["a", "b"], allow: ["a", "b"], methods: "    - {merge_method: regmean, parameters: {alpha: 0.9}}")

        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }
        XCTAssertEqual(f.wait("aggregator"), 0, "the aggregator completes the round")
        for agent in ["a", "b"] { XCTAssertEqual(f.wait(agent, limit: 60), 0, "agent \(agent) finishes") }
        XCTAssertFalse(f.log("aggregator").contains("quarantine"), f.log("aggregator"))

        // What b uploaded carries its accounting and is noised: the exact agent's has neither.
        let noisy = try SafeTensorsFile(path: try XCTUnwrap(f.contributionDirectory("b"), "b's contribution is stored") + "/stats.safetensors")
        let exact = try SafeTensorsFile(path: try XCTUnwrap(f.contributionDirectory("a"), "a's contribution is stored") + "/stats.safetensors")
        XCTAssertNotNil(noisy.metadata["gram.privacy"])
        XCTAssertNil(exact.metadata["gram.privacy"])
        XCTAssertTrue(f.log("b").contains("differentially private"), f.log("b"))
        let merged = try SafeTensorsFile(path: f.root + "/output/round-1/regmean/model.safetensors")
        let w = try merged.floatTensor("bert.encoder.layer.0.attention.self.query.weight")
        XCTAssertTrue(w.isFinite)
    }

    func testBadPrivacySectionsAreNamed() throws {
        let f = try Federation(name: "dp-config")
        federation = f
        try f.makeCertificates(agents: ["a"])
        try f.makeBaseModel()
        try f.makeData(agent: "a", domain: "alpha", seed: 100)
        let good = try String(contentsOfFile: try f.writeAgentConfig("a"), encoding: .utf8)
        let cases = [("zero-epsilon", "privacy: {gram_noise: {epsilon: 0}}", "'privacy.gram_noise.epsilon'"),
                     ("missing-epsilon", "privacy: {gram_noise: {clip: 1}}", "'privacy.gram_noise.epsilon'"),
                     ("unknown", "privacy: {weight_noise: {epsilon: 1}}", "'privacy.weight_noise'"),
                     ("self-audit-not-bool", "privacy: {self_audit: 3}", "'privacy.self_audit'")]
        for (name, section, key) in cases {
            try (good + "\n" + section + "\n").write(toFile: f.root + "/\(name).yaml", atomically: true, encoding: .utf8)
            try f.start(name, ["agent", "\(name).yaml", "--check"])
            XCTAssertEqual(f.wait(name, limit: 60), 2, f.log(name))
            XCTAssertTrue(f.log(name).contains(key), f.log(name))
        }
        try (good + "\nprivacy: {gram_noise: {epsilon: 2, clip: 0.5}, self_audit: true}\n").write(toFile: f.root + "/ok.yaml", atomically: true, encoding: .utf8)
        try f.start("ok", ["agent", "ok.yaml", "--check"])
        XCTAssertEqual(f.wait("ok", limit: 60), 0, f.log("ok"))
    }
}
