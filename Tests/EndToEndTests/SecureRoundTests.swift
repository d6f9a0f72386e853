// End-to-end: secure merges (issue 13) with real daemons on loopback. Three agents run a
// `secure: true` round; the merged models equal the clear merge of the very same prepared
// models (merged in-process by the clear methods) to 1e-6, while the aggregator's spool never
// holds a weight or a statistic. A forged key (a certificate of another CA) is refused by
// every honest agent, naming the agent and the reason; a member that vanishes after the key
// exchange makes the merge fail cleanly (exit 3) with the spool kept, and the other members are
// told (exit 3, not a wait for --connect-timeout). With heads: keep each member's head comes in
// the clear and the merge equals the clear heads: keep merge.

import Foundation
import LinAlg
import Merge
import MergeIO
import Protocol
import SafeTensors
import SecureSum
import XCTest

final class SecureRoundTests: FederationTestCase {
    static let methods = """
            - {merge_method: regmean, name: regmean-a0.5, parameters: {alpha: 0.5}}
            - {merge_method: regmean, name: regmean-a1.0, parameters: {alpha: 1.0}}
            - {merge_method: fisher}
            - {merge_method: average}
    """

    /// The inline round of `writeAggregatorConfig`, with `secure: true`.
    private func writeSecureConfig(_ f: Federation, subset: [String], methods: String = methods, deadline: Int = 600, minAgents: Int? = nil) throws {
        let path = try f.writeAggregatorConfig(subset: subset, allow: subset, methods: methods, deadline: deadline)
        var text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "round:\n", with: "round:\n  secure: true\n")
        if let minAgents { text = text.replacingOccurrences(of: "min_agents: \(subset.count)", with: "min_agents: \(minAgents)") }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// `name` joins the secure merge with a genuine signed key, receives everyone's keys, and
    /// vanishes (before its bounds); returns the agents whose keys were relayed.
    private func joinWithAGenuineKeyAndVanish(_ name: String, _ f: Federation) throws -> [String] {
        XCTAssertTrue(f.waitUntil(limit: 60) { f.log("aggregator").contains("aggregator listening") }, f.log("aggregator"))
        let rogue = RogueAgent(name, in: f)
        guard case .welcome(let welcome) = try rogue.join() else { XCTFail("\(name) was not welcomed"); return [] }
        let identity = try SigningIdentity(certificateFile: f.root + "/certs/\(name).pem", keyFile: f.root + "/certs/\(name).key")
        let key = try SignedPublicKey(signing: try AgreementKeyPair(), as: identity, for: KeyBinding(roundID: "\(welcome.round)", mergeName: welcome.merge))
        try rogue.client?.send(.secureKey(key.wire(round: welcome.round)))
        var relayed: SecureKeys?
        while relayed == nil { if case .secureKeys(let keys) = try rogue.next(timeout: 120) { relayed = keys } }
        rogue.client?.close()
        return relayed?.keys.map(\.agent).sorted() ?? []
    }

    /// Every regular file under `directory`, relative.
    private func files(under directory: String) -> [String] {
        (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: directory + "/" + path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }

    func testSecureMergeEqualsTheClearMergeAndTheSpoolHoldsNoWeights() throws {
        let agents = ["a", "b", "c"]
        let f = try Federation.make("secure-round", agents: agents)
        federation = f
        try writeSecureConfig(f, subset: agents)
        let started = Date()
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in agents { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }
        XCTAssertEqual(f.wait("aggregator"), 0, f.logs())
        for agent in agents { XCTAssertEqual(f.wait(agent, limit: 60), 0, f.logs()) }
        let seconds = Date().timeIntervalSince(started)

        // The aggregator's spool: masked uploads only, no weights, no statistics, no store entries.
        let spooled = files(under: f.root + "/spool")
        XCTAssertFalse(spooled.contains { $0.hasSuffix(".safetensors") }, "\(spooled)")
        XCTAssertEqual(spooled.filter { $0.hasSuffix(".bin") }.count, 3, "\(spooled)")
        for agent in agents { XCTAssertNil(f.contributionDirectory(agent), "agent \(agent) has a clear contribution in the store") }

        // What the aggregator spooled of a is noise: its bytes pass a chi-square test of
        // uniformity, and its words do not correlate with a's true summands.
        let spooledPath = f.root + "/spool/" + (try XCTUnwrap(spooled.first { $0.hasSuffix("/a/masked-round-1.bin") }, "\(spooled)"))
        let upload = try MaskedUpload.read(path: spooledPath)
        let words = upload.words.flatMap { $0 }
        var counts = [Int](repeating: 0, count: 256)
        for w in words { for b in 0..<8 { counts[Int((w >> (8 * UInt64(b))) & 0xff)] += 1 } }
        let expected = Double(words.count * 8) / 256
        let chiSquare = counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
        XCTAssertLessThan(chiSquare, 400, "255 degrees of freedom: above 400 has probability < 1e-8 for uniform bytes")
        let (model, _) = try ModelFiles.loadModel(directory: f.root + "/work/a/prepared")
        var truth: [Double] = []
        for method in upload.header.methods where method.sameAs == nil {
            let choice = try MethodChoice(from: ["merge_method": .string(method.layout.method)], file: "test")
            let statistics = try ModelFiles.loadStatistics(path: f.root + "/work/a/prepared/stats.safetensors", model: "a", kinds: choice.requiredStatistics)
            truth += try SumMerge.summands(method: method.layout.method, parameters: [:], model: model, statistics: statistics, weight: 1, name: "a").values.flatMap { $0 }
        }
        XCTAssertEqual(truth.count, words.count)
        let masked = words.map { Double(Int64(bitPattern: $0)) }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
        let (mx, my) = (mean(truth), mean(masked))
        var (sxy, sxx, syy) = (0.0, 0.0, 0.0)
        for (x, y) in zip(truth, masked) { sxy += (x - mx) * (y - my); sxx += (x - mx) * (x - mx); syy += (y - my) * (y - my) }
        let correlation = sxy / (sxx * syy).squareRoot()
        XCTAssertLessThanOrEqual(abs(correlation), 0.01, "\(words.count) words")
        print("secure-noise a: chi-square \(chiSquare) over \(words.count * 8) bytes, correlation with the true summands \(correlation)")

        // The same merges in the clear, from the very models the agents prepared.
        let inputs = agents.map { MergeInput(name: $0, modelDirectory: f.root + "/work/\($0)/prepared") }
        let entries: [(String, [String: MergeValue])] = [
            ("regmean-a0.5", ["merge_method": .string("regmean"), "parameters": .map(["alpha": .number(0.5)])]),
            ("regmean-a1.0", ["merge_method": .string("regmean"), "parameters": .map(["alpha": .number(1.0)])]),
            ("fisher", ["merge_method": .string("fisher")]),
            ("average", ["merge_method": .string("average")]),
        ]
        for (label, map) in entries {
            let clear = try MergeLoop.run(try MethodChoice(from: map, file: "test"), inputs: inputs, baseModel: f.root + "/base").result.tensors
            let secure = try SafeTensorsFile(path: f.root + "/output/round-1/\(label)/model.safetensors")
            var worst = 0.0
            for name in clear.names {
                let x = clear[name]!.storage, y = try secure.floatTensor(name).storage
                XCTAssertEqual(x.count, y.count, "\(label) \(name)")
                let scale = max(x.map { abs(Double($0)) }.max() ?? 0, 1e-12)
                let diff = zip(x, y).map { abs(Double($0) - Double($1)) }.max() ?? 0
                worst = max(worst, diff / scale)
            }
            XCTAssertLessThanOrEqual(worst, 1e-6, "\(label): secure vs clear max relative difference")
            print("secure-vs-clear \(label): max relative difference \(worst)")
        }

        // The report says it ran on sums, which sums, their scales and the bytes each agent sent.
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: f.root + "/output/round-1/report.json"))) as? [String: Any])
        XCTAssertEqual(report["secure"] as? Bool, true)
        let summary = try XCTUnwrap(report["secure_summation"] as? [String: Any], "\(report.keys)")
        let bytes = try XCTUnwrap(summary["bytes_per_agent"] as? [String: Int])
        XCTAssertEqual(Set(bytes.keys), Set(agents))
        let methods = try XCTUnwrap(summary["methods"] as? [String: Any])
        let regmean = try XCTUnwrap(methods["regmean-a0.5"] as? [String: Any])
        XCTAssertTrue((regmean["sums"] as? [String] ?? []).contains { $0.hasSuffix("#gram") }, "\(regmean)")
        // RegMean at α 1.0 reuses α 0.5's sums: one pair of products per linear serves every α.
        XCTAssertEqual((methods["regmean-a1.0"] as? [String: Any])?["same_sums_as"] as? String, "regmean-a0.5")
        for agent in agents {
            let prepared = f.root + "/work/\(agent)/prepared/"
            let clearBytes = try ["config.json", "model.safetensors", "stats.safetensors"].reduce(0) {
                $0 + ((try FileManager.default.attributesOfItem(atPath: prepared + $1)[.size] as? NSNumber)?.intValue ?? 0)
            }
            print("secure-bytes \(agent): masked \(bytes[agent]!) (4 methods) vs clear contribution \(clearBytes)")
        }
        print("secure-round seconds: \(String(format: "%.1f", seconds))")
    }

    /// heads: keep in secure mode: the bodies are merged from masked sums, each member's head
    /// comes in the clear beside them; the merged model equals the clear heads: keep merge
    /// (body to 1e-6 relative, every kept head bit for bit), each agent gets its own head back,
    /// and secure.json names the heads sent in the clear.
    func testSecureMergeWithKeptHeadsEqualsTheClearMergeWithKeptHeads() throws {
        let agents = ["a", "b", "c"]
        let f = try Federation.make("secure-keep", agents: agents)
        federation = f
        try writeSecureConfig(f, subset: agents, methods: """
                - {merge_method: regmean, parameters: {alpha: 0.5, heads: keep}}
                - {merge_method: average, parameters: {heads: keep}}
        """)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in agents { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }
        XCTAssertEqual(f.wait("aggregator"), 0, f.logs())
        for agent in agents { XCTAssertEqual(f.wait(agent, limit: 60), 0, f.logs()) }

        let inputs = agents.map { MergeInput(name: $0, modelDirectory: f.root + "/work/\($0)/prepared") }
        let entries: [(String, [String: MergeValue])] = [
            ("regmean", ["merge_method": .string("regmean"), "parameters": .map(["alpha": .number(0.5), "heads": .string("keep")])]),
            ("average", ["merge_method": .string("average"), "parameters": .map(["heads": .string("keep")])]),
        ]
        for (label, map) in entries {
            let clear = try MergeLoop.run(try MethodChoice(from: map, file: "test"), inputs: inputs, baseModel: f.root + "/base").result.tensors
            let secure = try SafeTensorsFile(path: f.root + "/output/round-1/\(label)/model.safetensors")
            XCTAssertEqual(Set(secure.names), Set(clear.names), label)
            var worst = 0.0
            var heads = 0
            for name in clear.names {
                let x = clear[name]!.storage, y = try secure.floatTensor(name).storage
                if name.hasPrefix("classifier_") {
                    XCTAssertEqual(x.map(\.bitPattern), y.map(\.bitPattern), "\(label) \(name): a kept head is the agent's own, bit for bit")
                    heads += 1
                    continue
                }
                XCTAssertEqual(x.count, y.count, "\(label) \(name)")
                let scale = max(x.map { abs(Double($0)) }.max() ?? 0, 1e-12)
                worst = max(worst, (zip(x, y).map { abs(Double($0) - Double($1)) }.max() ?? 0) / scale)
            }
            XCTAssertEqual(heads, 2 * agents.count, "\(label): weight and bias of each agent's head")
            XCTAssertLessThanOrEqual(worst, 1e-6, "\(label): secure vs clear body, max relative difference")
            print("secure-keep-vs-clear \(label): body max relative difference \(worst), \(heads) head tensors bit-identical")
            // Each agent's merged model carries its own head back.
            for agent in agents {
                let own = try SafeTensorsFile(path: f.root + "/work/\(agent)/prepared/model.safetensors")
                let got = try SafeTensorsFile(path: f.root + "/work/\(agent)/round-1/merged/\(label)/model.safetensors")
                for name in ["classifier.weight", "classifier.bias"] {
                    XCTAssertEqual(try got.floatTensor(name).storage.map(\.bitPattern), try own.floatTensor(name).storage.map(\.bitPattern), "\(agent) \(label) \(name)")
                }
            }
        }
        // The report says the heads were sent in the clear, and whose.
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: f.root + "/output/round-1/report.json"))) as? [String: Any])
        let summary = try XCTUnwrap(report["secure_summation"] as? [String: Any], "\(report.keys)")
        let clearHeads = try XCTUnwrap(summary["heads_sent_in_clear"] as? [String: [String]], "\(summary)")
        XCTAssertEqual(clearHeads.mapValues { $0.sorted() }, Dictionary(uniqueKeysWithValues: agents.map { ($0, ["classifier.bias", "classifier.weight"]) }))
        let methods = try XCTUnwrap(summary["methods"] as? [String: [String: Any]])
        XCTAssertTrue((methods["regmean"]?["heads"] as? String)?.contains("sent in the clear") == true, "\(methods)")
        let markdown = try String(contentsOfFile: f.root + "/output/round-1/report.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("were sent in the clear"), markdown)
    }

    func testForgedKeyIsRefusedByEveryAgentNamingTheReason() throws {
        let f = try Federation.make("secure-forged", agents: ["a", "b"], alsoCertified: ["c"])
        federation = f
        try f.makeForeignCertificates(agents: ["c"])
        try writeSecureConfig(f, subset: ["a", "b", "c"], methods: "    - {merge_method: average}", deadline: 30)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }

        // c is a member with a real TLS certificate, but signs its secure-sum key with a
        // certificate another CA issued under its name.
        XCTAssertTrue(f.waitUntil(limit: 60) { f.log("aggregator").contains("aggregator listening") }, f.log("aggregator"))
        let rogue = RogueAgent("c", in: f)
        guard case .welcome(let welcome) = try rogue.join() else { return XCTFail("c was not welcomed") }
        XCTAssertNotNil(welcome.secure, "WELCOME of a secure merge carries the plan")
        let foreign = try SigningIdentity(certificateFile: f.root + "/foreign-certs/c.pem", keyFile: f.root + "/foreign-certs/c.key")
        let forged = try SignedPublicKey(signing: try AgreementKeyPair(), as: foreign, for: KeyBinding(roundID: "\(welcome.round)", mergeName: welcome.merge))
        try rogue.client?.send(.secureKey(forged.wire(round: welcome.round)))

        // Each agent checks the keys on its worker thread: the first to refuse fails the merge,
        // and an agent still checking then learns it from MERGE_FAILED, which names the refusal
        // (exit 3) instead of refusing itself (exit 1). At least one refuses on its own.
        var refusedItself = 0
        for agent in ["a", "b"] {
            let status = f.wait(agent, limit: 120)
            XCTAssertTrue(status == 1 || status == 3, "\(agent): \(String(describing: status)) " + f.logs())
            if status == 1 { refusedItself += 1 }
            let log = f.log(agent)
            XCTAssertTrue(log.contains("secure merge refused") && log.contains("the federation CA did not issue") && log.contains("c"), log)
        }
        XCTAssertGreaterThanOrEqual(refusedItself, 1, f.logs())
        XCTAssertEqual(f.wait("aggregator", limit: 120), 3, "the merge fails as soon as a member refuses: " + f.logs())
        XCTAssertTrue(f.log("aggregator").contains("secure merge refused by"), f.log("aggregator"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/output/round-1/average/model.safetensors"))
    }

    /// The clear merge of `agents`' prepared models with `map`, against the secure output `label`.
    private func assertEqualsClearMerge(_ f: Federation, agents: [String], label: String, _ map: [String: MergeValue]) throws {
        let inputs = agents.map { MergeInput(name: $0, modelDirectory: f.root + "/work/\($0)/prepared") }
        let clear = try MergeLoop.run(try MethodChoice(from: map, file: "test"), inputs: inputs, baseModel: f.root + "/base").result.tensors
        let secure = try SafeTensorsFile(path: f.root + "/output/round-1/\(label)/model.safetensors")
        var worst = 0.0
        for name in clear.names {
            let x = clear[name]!.storage, y = try secure.floatTensor(name).storage
            let scale = max(x.map { abs(Double($0)) }.max() ?? 0, 1e-12)
            worst = max(worst, (zip(x, y).map { abs(Double($0) - Double($1)) }.max() ?? 0) / scale)
        }
        XCTAssertLessThanOrEqual(worst, 1e-6, "\(label): secure vs clear merge of \(agents)")
    }

    func testMemberSilentBeforeItsBoundsIsLeftOutAndTheSurvivorsMerge() throws {
        let f = try Federation.make("secure-silent", agents: ["a", "b"], alsoCertified: ["c"])
        federation = f
        try writeSecureConfig(f, subset: ["a", "b", "c"], methods: "    - {merge_method: average}", deadline: 30, minAgents: 2)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }

        // c sends a genuine key, receives everyone's keys, and vanishes before its bounds.
        XCTAssertEqual(try joinWithAGenuineKeyAndVanish("c", f), ["a", "b", "c"])

        XCTAssertEqual(f.wait("aggregator", limit: 180), 0, f.logs())
        XCTAssertTrue(f.log("aggregator").contains("fixing the scale without the silent members"), f.log("aggregator"))
        try assertEqualsClearMerge(f, agents: ["a", "b"], label: "average", ["merge_method": .string("average")])
    }

    func testMemberKilledMidMaskedUploadIsUnmaskedByTheSurvivorsReveals() throws {
        let agents = ["a", "b", "c"]
        let f = try Federation.make("secure-reveal", agents: agents)
        federation = f
        try writeSecureConfig(f, subset: agents, methods: "    - {merge_method: average}\n    - {merge_method: regmean, parameters: {alpha: 0.5}}", deadline: 40, minAgents: 2)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }
        // c dies abruptly (exit 99, as kill -9: no goodbye) after 64 KiB of its masked upload,
        // so its masks are in a's and b's uploads and its own upload never commits.
        try f.start("c", ["agent", "agent-c.yaml", "--once", "--chunk-size", "16384", "--crash-after-bytes", "65536"])
        XCTAssertEqual(f.wait("c", limit: 300), 99, f.logs())
        XCTAssertEqual(f.wait("aggregator", limit: 300), 0, f.logs())
        XCTAssertTrue(f.log("aggregator").contains("reveal their seeds with the dropped members"), f.log("aggregator"))
        for agent in ["a", "b"] {
            XCTAssertEqual(f.wait(agent, limit: 60), 0, f.logs())
            XCTAssertTrue(f.log(agent).contains("revealing the seeds shared with them"), f.log(agent))
        }
        try assertEqualsClearMerge(f, agents: ["a", "b"], label: "average", ["merge_method": .string("average")])
        try assertEqualsClearMerge(f, agents: ["a", "b"], label: "regmean", ["merge_method": .string("regmean"), "parameters": .map(["alpha": .number(0.5)])])
        let report = try String(contentsOfFile: f.root + "/output/round-1/report.json", encoding: .utf8)
        XCTAssertTrue(report.contains("masks_removed_by_reveal"), report)
    }

    func testMemberLostAfterTheKeyExchangeFailsTheMergeBelowMinAgents() throws {
        let f = try Federation.make("secure-dropout", agents: ["a", "b"], alsoCertified: ["c"])
        federation = f
        try writeSecureConfig(f, subset: ["a", "b", "c"], methods: "    - {merge_method: average}", deadline: 30)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }

        XCTAssertEqual(try joinWithAGenuineKeyAndVanish("c", f), ["a", "b", "c"])

        // min_agents is 3 (the subset): with c gone the merge cannot complete.
        XCTAssertEqual(f.wait("aggregator", limit: 180), 3, f.logs())
        XCTAssertTrue(f.log("aggregator").contains("fewer than min_agents"), f.log("aggregator"))
        let record = try String(contentsOfFile: f.root + "/output/round-1/merge.json", encoding: .utf8)
        XCTAssertTrue(record.contains("failed") && record.contains("c"), record)
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.root + "/spool"), "the spool is kept")
        // The members are told (MERGE_FAILED) instead of waiting for --connect-timeout: each
        // --once agent exits 3, its log naming the merge and the reason.
        for agent in ["a", "b"] {
            XCTAssertEqual(f.wait(agent, limit: 30), 3, f.logs())
            let log = f.log(agent)
            XCTAssertTrue(log.contains("merge 'round-1' (round 1) failed at the aggregator") && log.contains("fewer than min_agents"), log)
        }
    }
}
