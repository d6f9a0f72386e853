// End-to-end hardening: a real aggregator process against malicious members (RogueAgent,
// real certificates, the real protocol) and careless configs. Each test names the issue-17
// item it covers. Honest agents are real `fedmerge agent` processes.

import Foundation
import LinAlg
import Protocol
import SafeTensors
import XCTest

final class HardeningTests: FederationTestCase {
    private var rogues: [RogueAgent] = []

    override func tearDown() {
        rogues.forEach { $0.close() }
        super.tearDown()
    }

    private func setUp(_ name: String, honest: [String], rogues names: [String] = []) throws -> Federation {
        let f = try Federation.make(name, agents: honest, alsoCertified: names, domains: ["alpha", "beta", "gamma"], seed: 200)
        federation = f
        return f
    }

    private func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any], path)
    }

    /// Items 2, 3, 4, 5, 8, 11, 12: poisoned but finite weights, negative-definite Grams, a
    /// foreign config.json, an extra tensor from an agent that sorts first, forged EVALs, a
    /// re-upload over a committed file and a 1 TiB offer. Every poisoned contribution is
    /// quarantined with its reason and its agent told; the honest agents' merge goes on and
    /// equals the offline merge of exactly them; the published config is the base model's.
    func testPoisonedContributionsAreQuarantinedAndTheHonestAgentsMerge() throws {
        let rogueNames = ["aaa-extra", "m-scaled", "m-negative-gram", "m-config", "m-forger"]
        let f = try setUp("poison", honest: ["a", "b"], rogues: rogueNames)
        let subset = rogueNames + ["a", "b"]
        try f.writeAggregatorConfig(subset: subset, allow: subset, methods: Federation.threeMethods, minAgents: 2, deadline: 150)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "300"]) }
        XCTAssertTrue(f.waitUntil(limit: 300) { f.uploadComplete("a") && f.uploadComplete("b") }, "honest uploads committed")

        let honest = f.root + "/work/a/prepared"
        let forged = f.root + "/forged"
        try RogueAgent.tamper(from: honest, to: forged + "/aaa-extra",
                              extraModelTensors: [("evil.extra", Tensor(shape: [4], repeating: 1))])
        try RogueAgent.tamper(from: honest, to: forged + "/m-scaled", model: { _, t in t.scaled(by: 1e30) })
        try RogueAgent.tamper(from: honest, to: forged + "/m-negative-gram", statistics: { name, t in name.hasSuffix(".gram") ? t.scaled(by: -1) : t })
        try RogueAgent.tamper(from: honest, to: forged + "/m-config", config: { $0["hidden_size"] = 4096; $0["model_type"] = "gpt2"; $0["evil"] = true })

        let expected = ["aaa-extra": "evil.extra", "m-scaled": "moved", "m-negative-gram": "not positive semi-definite", "m-config": "hidden_size"]
        for (name, needle) in expected.sorted(by: { $0.key < $1.key }) {
            let rogue = RogueAgent(name, in: f)
            rogues.append(rogue)
            guard case .welcome = try rogue.join() else { return XCTFail("\(name) was not welcomed") }
            for file in ["config.json", "model.safetensors", "stats.safetensors"] {
                guard case .committed = try rogue.upload(forged + "/\(name)/" + file, as: file) else { return XCTFail("\(name): \(file) not committed") }
            }
            let report = try XCTUnwrap(rogue.awaitError(), "\(name) is told its contribution was quarantined")
            XCTAssertEqual(report.code, "quarantined", name)
            XCTAssertTrue(report.message.contains(needle), "\(name): \(report.message)")
            // Quarantined for the round: a new link is refused with the reason.
            guard case .refused(let refused) = try rogue.join() else { return XCTFail("\(name) rejoined") }
            XCTAssertTrue(refused.reason.contains("quarantined"), refused.reason)
        }

        // Forged EVALs (item 4) and replacement uploads (item 5), oversized offers (item 12).
        let forger = RogueAgent("m-forger", in: f)
        rogues.append(forger)
        guard case .welcome = try forger.join() else { return XCTFail("forger not welcomed") }
        let forgedEval = try forger.send(.eval(Eval(round: 1, method: "regmean", metrics: ["accuracy": 1, "macro_f1": 1])))
        guard case .error(let evalError) = forgedEval else { return XCTFail("a forged EVAL was answered with \(String(describing: forgedEval))") }
        XCTAssertTrue(evalError.message.contains("not sent"), evalError.message)
        try forger.join()
        guard case .error(let ownError) = try forger.send(.eval(Eval(round: 1, method: "local", metrics: ["accuracy": 1]))) else { return XCTFail("EVAL of own model before upload accepted") }
        XCTAssertTrue(ownError.message.contains("before its contribution was committed"), ownError.message)

        try forger.join()
        guard case .committed = try forger.upload(honest + "/config.json", as: "config.json") else { return XCTFail("config.json") }
        try Data("{\"hidden_size\": 1}".utf8).write(to: URL(fileURLWithPath: forged + "-swap.json"))
        guard case .error(let swap) = try forger.upload(forged + "-swap.json", as: "config.json") else { return XCTFail("a committed file was replaced") }
        XCTAssertTrue(swap.message.contains("already committed"), swap.message)
        try forger.join()
        let huge = Offer(transferID: "t", name: "model.safetensors", size: 1 << 40, sha256: String(repeating: "0", count: 64))
        guard case .error(let tooBig) = try forger.send(.offer(huge)) else { return XCTFail("a 1 TiB offer was accepted") }
        XCTAssertTrue(tooBig.message.contains("exceeds"), tooBig.message)
        forger.close()

        // The forger never completes; at the deadline the honest quorum merges.
        XCTAssertEqual(f.wait("aggregator", limit: 400), 0, "the round completes without the poisoned contributions")
        for agent in ["a", "b"] { XCTAssertEqual(f.wait(agent, limit: 60), 0, agent) }

        let report = try json(f.root + "/output/round-1/report.json")
        XCTAssertEqual(report["merged_agents"] as? [String], ["a", "b"])
        XCTAssertEqual(Set((report["quarantined_agents"] as? [String: [String]] ?? [:]).keys), Set(expected.keys))
        XCTAssertNil((report["evaluations"] as? [String: Any])?["m-forger"], "no forged evaluation in the report")
        for name in expected.keys {
            let reason = try json(f.root + "/spool/store/.quarantine/\(name)/reason.json")
            XCTAssertEqual(reason["agent"] as? String, name)
            XCTAssertTrue(FileManager.default.fileExists(atPath: f.root + "/spool/store/.quarantine/\(name)/model.safetensors"), "kept for the operator")
        }
        // The blame lands on the model that has the extra tensor, not on an honest one.
        let extraReason = try json(f.root + "/spool/store/.quarantine/aaa-extra/reason.json")
        XCTAssertTrue("\(extraReason["reasons"] ?? "")".contains("evil.extra"))

        // Published config (item 3): the base model's architecture, the honest agents' labels, nothing else.
        let published = try json(f.root + "/output/round-1/regmean/config.json")
        let base = try json(f.root + "/base/config.json")
        XCTAssertEqual(published["hidden_size"] as? Int, base["hidden_size"] as? Int)
        XCTAssertEqual(published["model_type"] as? String, "bert")
        XCTAssertNil(published["evil"])
        let honestConfig = try json(honest + "/config.json")
        XCTAssertEqual(published["id2label"] as? [String: String], honestConfig["id2label"] as? [String: String])

        // The daemon's RegMean equals `fedmerge merge` run offline on exactly the honest uploads.
        try f.offlineMerge("regmean", method: "regmean", parameters: "{alpha: 0.9, heads: average}", agents: ["a", "b"])
        let worst = try Federation.maxDifference(f.root + "/output/round-1/regmean/model.safetensors", f.root + "/offline/regmean/model.safetensors")
        XCTAssertLessThanOrEqual(worst, 1e-6, "daemon vs offline RegMean of the honest agents")
    }

    /// Item 13: a method that needs new statistics is added while the round is under way (the
    /// aggregator restarted with it). Committed statistics that lack it are set aside, the
    /// agents are asked again and send new ones, and the round completes with both methods.
    func testAddingAMethodThatNeedsNewStatisticsAsksTheAgentsAgain() throws {
        let f = try setUp("new-stats", honest: ["a", "b"])
        try f.writeAggregatorConfig(subset: ["a", "b", "late"], allow: ["a", "b", "late"], methods: "    - {merge_method: regmean}")
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "300"]) }
        XCTAssertTrue(f.waitUntil(limit: 300) { f.uploadComplete("a") && f.uploadComplete("b") }, "uploads with Grams only")
        let before = try SafeTensorsFile(path: try XCTUnwrap(f.contributionDirectory("a")) + "/stats.safetensors")
        XCTAssertFalse(before.names.contains { $0.hasSuffix(".fisher") }, "the first round asked for Grams only")
        f.kill("aggregator")

        try f.writeAggregatorConfig(subset: ["a", "b"], allow: ["a", "b"], methods: "    - {merge_method: regmean}\n    - {merge_method: fisher}")
        try f.start("aggregator-2", ["aggregator", "aggregator.yaml", "--once"])
        XCTAssertEqual(f.wait("aggregator-2"), 0, "the round completes once the agents sent Fishers")
        for agent in ["a", "b"] {
            XCTAssertEqual(f.wait(agent, limit: 60), 0, agent)
            let stats = try SafeTensorsFile(path: try XCTUnwrap(f.contributionDirectory(agent)) + "/stats.safetensors")
            XCTAssertTrue(stats.names.contains { $0.hasSuffix(".fisher") }, "\(agent) sent Fishers")
            XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(f.contributionDirectory(agent)) + "/.superseded/stats.safetensors"), "old statistics kept")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.root + "/output/round-1/fisher/model.safetensors"))
    }

    /// Items 7, 8, 14, 15 (aggregator side): a private key others can read (exit 4), names that would become paths outside the spool,
    /// duplicate allow entries, spool aliasing output, a method labelled like an agent or a
    /// reserved name: each a named config error (exit 2). A spool that cannot be a directory is
    /// a named start-up error (exit 2). Half-written merged models a killed aggregator left are
    /// removed at start, and a second aggregator on the same spool is refused.
    func testCarelessConfigsAreRefusedByName() throws {
        let f = try setUp("careless", honest: ["a"])
        func expectBadConfig(_ name: String, _ yaml: String, mentions needles: [String], exit: Int32 = 2) throws {
            try yaml.write(toFile: f.root + "/\(name).yaml", atomically: true, encoding: .utf8)
            try f.start(name, ["aggregator", "\(name).yaml"])
            XCTAssertEqual(f.wait(name, limit: 60), exit, f.log(name))
            for needle in needles { XCTAssertTrue(f.log(name).contains(needle), "\(name): expected '\(needle)' in\n\(f.log(name))") }
        }
        func config(allow: String = "[a]", subset: String = "[a]", spool: String = "spool", output: String = "output",
                    methods: String = "[{merge_method: average}]") -> String {
            """
            listen: \(f.endpoint)
            tls: {ca: certs/ca.pem, cert: certs/aggregator.pem, key: certs/aggregator.key}
            allow: \(allow)
            spool: \(spool)
            output: \(output)
            round: {id: 1, base_model: base, subset: \(subset), methods: \(methods)}
            """
        }
        try expectBadConfig("traversal", config(allow: "[a, '../../../../tmp/x']"), mentions: ["allow[1]", "../../../../tmp/x"])
        try expectBadConfig("newline", config(allow: "[a, \"b\\nforged log line\"]"), mentions: ["allow[1]", "b\\nforged"])
        try expectBadConfig("duplicate", config(allow: "[a, b, a]"), mentions: ["allow[2]", "each name once"])
        try expectBadConfig("alias", config(spool: "shared", output: "shared"), mentions: ["'output'", "apart from spool"])
        try expectBadConfig("nested", config(spool: "out/spool", output: "out"), mentions: ["'output'"])
        try expectBadConfig("agent-label", config(methods: "[{merge_method: average, name: a}]"), mentions: ["name", "agent's name"])
        try expectBadConfig("reserved-label", config(methods: "[{merge_method: average, name: local}]"), mentions: ["'local'"])
        try expectBadConfig("method-traversal", config(methods: "[{merge_method: average, name: ../x}]"), mentions: ["../x"])
        try Data().write(to: URL(fileURLWithPath: f.root + "/spool-file"))
        try expectBadConfig("spool-is-file", config(spool: "spool-file"), mentions: ["cannot create or use directory", "spool-file"])

        // A private key others can read is refused like ssh does, by --check and at start (exit 4).
        let key = f.root + "/certs/aggregator.key"
        XCTAssertEqual(chmod(key, 0o644), 0)
        try config().write(toFile: f.root + "/loose-key.yaml", atomically: true, encoding: .utf8)
        try f.start("loose-key-check", ["aggregator", "loose-key.yaml", "--check"])
        XCTAssertEqual(f.wait("loose-key-check", limit: 60), 4, f.log("loose-key-check"))
        XCTAssertTrue(f.log("loose-key-check").contains("readable by others") && f.log("loose-key-check").contains("aggregator.key"), f.log("loose-key-check"))
        try f.start("loose-key", ["aggregator", "loose-key.yaml"])
        XCTAssertEqual(f.wait("loose-key", limit: 60), 4, f.log("loose-key"))
        XCTAssertEqual(chmod(key, 0o600), 0)

        // A half-written merged model from a killed aggregator is cleaned at start; a second
        // aggregator on the same round is refused while the first holds it.
        try FileManager.default.createDirectory(atPath: f.root + "/output/round-1/.average.partial-99999", withIntermediateDirectories: true)
        try config().write(toFile: f.root + "/good.yaml", atomically: true, encoding: .utf8)
        try f.start("first", ["aggregator", "good.yaml"])
        XCTAssertTrue(f.waitUntil(limit: 60) { f.log("first").contains("aggregator listening") }, f.log("first"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/output/round-1/.average.partial-99999"))
        // Two processes with one certificate: the newer link replaces the older, and the
        // operator is warned (item 14; it was an info line).
        let one = RogueAgent("a", in: f), two = RogueAgent("a", in: f)
        rogues += [one, two]
        try one.join()
        try two.join()
        XCTAssertTrue(f.waitUntil(limit: 30) { f.log("first").contains("two processes share certificate 'a'") }, f.log("first"))
        XCTAssertTrue(f.log("first").contains("warning"), f.log("first"))
        try f.start("second", ["aggregator", "good.yaml"])
        XCTAssertEqual(f.wait("second", limit: 60), 2, f.log("second"))
        XCTAssertTrue(f.log("second").contains("another aggregator is serving this spool"), f.log("second"))
        f.kill("first")
    }
}
