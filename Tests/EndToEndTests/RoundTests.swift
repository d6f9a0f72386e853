// End-to-end: real `fedmerge aggregator` and `fedmerge agent` processes on loopback with real
// TLS, a tiny random BERT base and synthetic data. Run alone with `swift test --filter EndToEnd`.

import Foundation
import LinAlg
import SafeTensors
import XCTest

final class EndToEndRoundTests: FederationTestCase {
    private func setUpFederation(_ name: String, agents: [String]) throws -> Federation {
        let f = try Federation.make(name, agents: agents)
        federation = f
        return f
    }

    func testThreeAgentsCompleteRoundWhileOutsidersAreRefused() throws {
        let f = try setUpFederation("round", agents: ["a", "b", "c", "outsider"])
        try f.makeForeignCertificates(agents: ["mallory"])
        try f.makeData(agent: "mallory", domain: "delta", seed: 9)
        try f.writeAgentConfig("mallory", certificates: "foreign-certs")
        try f.writeAggregatorConfig(subset: ["a", "b", "c"], allow: ["a", "b", "c", "outsider", "mallory"],
                                    methods: Federation.fourMethods)

        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b", "c", "outsider", "mallory"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }

        XCTAssertEqual(f.wait("aggregator"), 0, "the aggregator completes the round")
        for agent in ["a", "b", "c"] { XCTAssertEqual(f.wait(agent, limit: 60), 0, "agent \(agent) finishes") }
        // Not in 𝒦: admitted by TLS, refused by the round with the reason; foreign CA: no handshake.
        XCTAssertEqual(f.wait("outsider", limit: 60), 4)
        XCTAssertTrue(f.log("outsider").contains("not in this round's subset"), f.log("outsider"))
        XCTAssertEqual(f.wait("mallory", limit: 60), 4)
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/spool/store/outsider"), "a refused agent leaves no spool")
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/spool/store/mallory"))

        // report.json: one EVAL per agent per method, plus each agent's own model.
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: f.root + "/output/round-1/report.json"))) as? [String: Any])
        let evaluations = try XCTUnwrap(report["evaluations"] as? [String: [String: [String: Double]]])
        XCTAssertEqual(Set(evaluations.keys), ["a", "b", "c"])
        for (agent, byMethod) in evaluations {
            XCTAssertEqual(Set(byMethod.keys), ["local", "regmean", "fisher", "average", "mats"], agent)
            for (method, metrics) in byMethod {
                let accuracy = try XCTUnwrap(metrics["accuracy"])
                XCTAssertTrue((0...1).contains(accuracy), "\(agent)/\(method) accuracy \(accuracy)")
                XCTAssertEqual(metrics["examples"], 80)
            }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.root + "/output/round-1/report.md"))
        // MaTS with objective kfac made the round ask for K-FAC output factors, and the agents sent them.
        let stats = try SafeTensorsFile(path: try XCTUnwrap(f.contributionDirectory("a")) + "/stats.safetensors")
        XCTAssertTrue(stats.names.contains("bert.encoder.layer.0.intermediate.dense.kfac_out"), stats.names.joined(separator: ", "))
        XCTAssertNotNil(stats.metadata["bert.encoder.layer.0.intermediate.dense.kfac_out.num_rows"])

        // The daemon's RegMean equals `fedmerge merge` run offline on the same uploads.
        try f.offlineMerge("regmean", method: "regmean", parameters: "{alpha: 0.9, heads: average}", agents: ["a", "b", "c"])
        let worst = try Federation.maxDifference(f.root + "/output/round-1/regmean/model.safetensors", f.root + "/offline/regmean/model.safetensors")
        XCTAssertLessThanOrEqual(worst, 1e-6, "daemon vs offline RegMean")
    }

    func testAggregatorKilledAfterTwoCommitsResumesWithoutReupload() throws {
        let f = try setUpFederation("restart", agents: ["a", "b", "c"])
        try f.writeAggregatorConfig(subset: ["a", "b", "c"], allow: ["a", "b", "c"], methods: Federation.threeMethods)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        try f.start("a", ["agent", "agent-a.yaml", "--once", "--connect-timeout", "300"])
        try f.start("b", ["agent", "agent-b.yaml", "--once", "--connect-timeout", "300"])
        XCTAssertTrue(f.waitUntil { f.uploadComplete("a") && f.uploadComplete("b") }, "two uploads committed")
        f.kill("aggregator")
        let before = try ["a", "b"].map { try FileManager.default.attributesOfItem(atPath: try XCTUnwrap(f.contributionDirectory($0)) + "/model.safetensors") }

        try f.start("aggregator-restarted", ["aggregator", "aggregator.yaml", "--once"])
        try f.start("c", ["agent", "agent-c.yaml", "--once", "--connect-timeout", "300"])
        XCTAssertEqual(f.wait("aggregator-restarted"), 0, "the restarted aggregator completes the round")
        for agent in ["a", "b", "c"] { XCTAssertEqual(f.wait(agent, limit: 60), 0, agent) }

        let after = try ["a", "b"].map { try FileManager.default.attributesOfItem(atPath: try XCTUnwrap(f.contributionDirectory($0)) + "/model.safetensors") }
        for (x, y) in zip(before, after) {
            XCTAssertEqual(x[.systemFileNumber] as? Int, y[.systemFileNumber] as? Int, "spooled upload not rewritten")
            XCTAssertEqual(x[.modificationDate] as? Date, y[.modificationDate] as? Date)
        }
        for agent in ["a", "b"] {
            let uploads = f.log(agent).components(separatedBy: "\n").filter { $0.contains("uploading") && $0.contains("model.safetensors") }
            XCTAssertEqual(uploads.count, 1, "agent \(agent) uploaded its model once:\n\(uploads.joined(separator: "\n"))")
        }
    }

    func testAgentKilledMidUploadResumesFromAcknowledgedOffset() throws {
        let f = try setUpFederation("resume", agents: ["a", "b"])
        try f.writeAggregatorConfig(subset: ["a", "b"], allow: ["a", "b"], methods: "    - {merge_method: regmean}")
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        try f.start("b", ["agent", "agent-b.yaml", "--once"])
        try f.start("a-crash", ["agent", "agent-a.yaml", "--once", "--chunk-size", "4096", "--crash-after-bytes", "30000"])
        XCTAssertEqual(f.wait("a-crash", limit: 300), 99, "fault injection ends the first agent run mid-upload")
        XCTAssertFalse(f.uploadComplete("a", files: ["model.safetensors"]), "nothing renamed before the upload completed")

        try f.start("a", ["agent", "agent-a.yaml", "--once", "--chunk-size", "4096"])
        XCTAssertEqual(f.wait("aggregator"), 0)
        XCTAssertEqual(f.wait("a", limit: 60), 0)
        // The restarted agent took its model and statistics from its workdir: no second fine-tuning or statistics pass.
        XCTAssertTrue(f.log("a").contains("reusing the fine-tuned model") && f.log("a").contains("reusing statistics"), f.log("a"))
        XCTAssertFalse(f.log("a").contains("fine-tuning") || f.log("a").contains("statistics computed"), f.log("a"))

        // The aggregator accepted the second offer of a's model at a non-zero durable offset.
        let offers = f.log("aggregator").components(separatedBy: "\n").filter { $0.contains("offer accepted") && $0.contains("name=model.safetensors") && $0.contains("agent=a") }
        let offsets = offers.compactMap { line in line.components(separatedBy: " ").first { $0.hasPrefix("resumeAt=") }.flatMap { Int($0.dropFirst(9)) } }
        XCTAssertEqual(offsets.count, 2, offers.joined(separator: "\n"))
        XCTAssertEqual(offsets.first, 0)
        XCTAssertGreaterThan(offsets.last ?? 0, 0, "resumed, not restarted")
        XCTAssertEqual((offsets.last ?? 0) % 4096, 0, "resumes at a chunk boundary the receiver acknowledged")
        // And the spooled file is byte-identical to the agent's own.
        let spooled = try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(f.contributionDirectory("a")) + "/model.safetensors"))
        let local = try Data(contentsOf: URL(fileURLWithPath: f.root + "/work/a/prepared/model.safetensors"))
        XCTAssertEqual(spooled, local)
    }

    func testMalformedConfigsGiveNamedErrorsAndExitCodes() throws {
        let f = try setUpFederation("config", agents: ["a"])
        try f.writeAggregatorConfig(subset: ["a"], allow: ["a"], methods: "    - {merge_method: regmean}")
        try f.start("check-ok", ["aggregator", "aggregator.yaml", "--check"])
        XCTAssertEqual(f.wait("check-ok", limit: 60), 0, f.log("check-ok"))

        try f.writeAggregatorConfig(subset: ["a"], allow: ["a"], methods: "    - {merge_method: regmeen}", minAgents: 1, name: "bad-method.yaml")
        try f.start("bad-method", ["aggregator", "bad-method.yaml"])
        XCTAssertEqual(f.wait("bad-method", limit: 60), 2)
        XCTAssertTrue(f.log("bad-method").contains("bad-method.yaml") && f.log("bad-method").contains("merge_method") && f.log("bad-method").contains("regmean"), f.log("bad-method"))

        try "listen: tcp://127.0.0.1:1\nround: {id: 1}\n".write(toFile: f.root + "/incomplete.yaml", atomically: true, encoding: .utf8)
        try f.start("incomplete", ["aggregator", "incomplete.yaml"])
        XCTAssertEqual(f.wait("incomplete", limit: 60), 2)
        XCTAssertTrue(f.log("incomplete").contains("incomplete.yaml: missing key 'tls'"), f.log("incomplete"))

        try "name: a\naggregator: tcp://127.0.0.1:1\ntls: {ca: x, cert: y, key: z}\nbase_model: base\nworkdir: w\ndata: {train: t.csv, test: t.csv}\ntrain: {epochs: zero}\n"
            .write(toFile: f.root + "/bad-agent.yaml", atomically: true, encoding: .utf8)
        try f.start("bad-agent", ["agent", "bad-agent.yaml", "--once"])
        XCTAssertEqual(f.wait("bad-agent", limit: 60), 2)
        XCTAssertTrue(f.log("bad-agent").contains("'train.epochs' must be a whole number"), f.log("bad-agent"))

        try "listen: [unclosed\n".write(toFile: f.root + "/syntax.yaml", atomically: true, encoding: .utf8)
        try f.start("syntax", ["aggregator", "syntax.yaml"])
        XCTAssertEqual(f.wait("syntax", limit: 60), 2)
        XCTAssertTrue(f.log("syntax").contains("syntax.yaml: not valid YAML"), f.log("syntax"))
    }
}
