// What an agent does when its aggregator is hostile, dies, or its own files are bad (issue
// 17 items 6, 7, 10, 14, 15): real `fedmerge agent` processes against a scripted aggregator
// (FakeAggregator: real TLS, real sockets) or the real `fedmerge aggregator`.

import Foundation
import LinAlg
import Protocol
import SafeTensors
import XCTest

final class AgentHardeningTests: FederationTestCase {
    private func setUpFederation(_ name: String, agents: [String]) throws -> Federation {
        let f = try Federation.make(name, agents: agents, domains: ["alpha", "beta"], seed: 200)
        federation = f
        return f
    }

    /// The WELCOME of a round whose uploads are all in: the agent prepares, evaluates its own
    /// model and waits for merged models of `methods`.
    private func distributingWelcome(methods: [String]) -> Message {
        .welcome(Welcome(round: 1, wantedStatistics: [], methods: methods, required: ["config.json", "model.safetensors"],
                         committed: ["config.json", "model.safetensors"], phase: .distributing))
    }

    private func isHello(_ message: Message) -> Bool { if case .hello = message { true } else { false } }

    /// Every path under `root` (files and directories) outside the `excluded` subtrees.
    private func tree(_ root: String, excluding excluded: [String]) -> Set<String> {
        var paths = Set<String>()
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let relative = enumerator?.nextObject() as? String {
            let path = root + "/" + relative
            if excluded.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) { continue }
            paths.insert(relative)
        }
        return paths
    }

    // MARK: item 6 — the aggregator is trusted with nothing but the model bytes

    func testHostileMergedMessagesAreRefusedByNameAndNothingOutsideTheWorkdirIsTouched() throws {
        let f = try setUpFederation("hostile-merged", agents: ["a"])
        let victim = f.root + "/victim"
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        try "precious".write(toFile: victim + "/keep.txt", atomically: true, encoding: .utf8)
        let fake = try FakeAggregator(endpoint: f.endpoint, certificates: f.root + "/certs")
        try f.start("a", ["agent", "agent-a.yaml", "--once", "--connect-timeout", "60"])
        XCTAssertTrue(fake.serve { $0.contains(where: isHello) }, "the agent says HELLO")
        try fake.send(distributingWelcome(methods: ["regmean", "average"]))
        XCTAssertTrue(fake.serve { _ in fake.evaluations.contains { $0.method == "local" } }, "the agent evaluates its own model")
        let own = f.root + "/work/a/prepared/model.safetensors"
        let outside = tree(f.root, excluding: [f.root + "/work/a", f.root + "/logs"])

        // A method label that climbs out of <workdir>/round-1/merged/ to ../../../../victim.
        let traversal = "../../../../victim"
        try fake.push(merged: traversal, file: own, name: "x.safetensors")
        XCTAssertTrue(fake.serve(limit: 60) { _ in fake.errors.contains { $0.message.contains(traversal) } }, "ERROR names the label")
        // A label that would forge a log line.
        try fake.push(merged: "evil\nFORGED line", file: own, name: "x.safetensors")
        XCTAssertTrue(fake.serve(limit: 60) { _ in fake.errors.contains { $0.message.contains("evil\\nFORGED") } })
        // Another round, two files, an unexpected file name.
        try fake.push(merged: "regmean", round: 7, file: own, name: "regmean.safetensors")
        XCTAssertTrue(fake.serve(limit: 60) { _ in fake.errors.contains { $0.message.contains("round 7") } })
        let file = MergedFile(name: "regmean.safetensors", size: 1, sha256: String(repeating: "0", count: 64))
        try fake.push(merged: "regmean", file: own, name: "regmean.safetensors", announce: [file, file])
        XCTAssertTrue(fake.serve(limit: 60) { _ in fake.errors.contains { $0.message.contains("2 files") } })
        try fake.push(merged: "regmean", file: own, name: "weights.bin")
        XCTAssertTrue(fake.serve(limit: 60) { _ in fake.errors.contains { $0.message.contains("weights.bin") } })
        fake.serve(seconds: 1)

        XCTAssertEqual(try String(contentsOfFile: victim + "/keep.txt", encoding: .utf8), "precious")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: victim), ["keep.txt"])
        XCTAssertEqual(tree(f.root, excluding: [f.root + "/work/a", f.root + "/logs"]), outside, "nothing created or deleted outside the workdir")
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/work/a/round-7"), "another round's MERGED touches no disk")
        XCTAssertFalse(f.log("a").contains("\nFORGED"), "a peer value cannot start a log line")
        XCTAssertTrue(f.log("a").contains(traversal), "the agent's log names the refused label")
        XCTAssertNil(f.wait("a", limit: 0.5), "refused messages do not end the agent")

        // The real thing is still accepted: its own weights as 'regmean'.
        XCTAssertTrue(try fake.deliver(merged: "regmean", file: own), "a well-formed merged model is received")
        XCTAssertTrue(fake.serve(limit: 120) { _ in fake.evaluations.contains { $0.method == "regmean" } }, "and evaluated")
        let merged = f.root + "/work/a/round-1/merged/regmean/model.safetensors"
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: merged)), try Data(contentsOf: URL(fileURLWithPath: own)))

        // Weights that do not fit this agent's model: one matrix loses a row.
        let ownFile = try SafeTensorsFile(path: own)
        let victimTensor = try XCTUnwrap(ownFile.names.sorted().first { ownFile.entry($0)!.shape.count == 2 })
        var tensors: [(name: String, tensor: Tensor<Float>)] = []
        for name in ownFile.names {
            var t = try ownFile.floatTensor(name)
            if name == victimTensor {
                let (rows, cols) = (t.shape[0], t.shape[1])
                t = try Tensor(shape: [rows - 1, cols], storage: Array(t.storage.prefix((rows - 1) * cols)))
            }
            tensors.append((name, t))
        }
        let misfit = f.root + "/misfit.safetensors"
        try SafeTensorsWriter.write(tensors: tensors, to: misfit)
        XCTAssertTrue(try fake.deliver(merged: "average", file: misfit))
        XCTAssertTrue(fake.serve(limit: 60) { _ in fake.errors.contains { $0.method == "average" && $0.message.contains(victimTensor) } },
                      "the misfit is refused naming the tensor")
        XCTAssertEqual(fake.errors.first { $0.method == "average" }?.code, "eval_failed")
        // Every method is now evaluated or failed: the agent ends, non-zero, naming the failure.
        XCTAssertEqual(f.wait("a", limit: 60), 1)
        XCTAssertTrue(f.log("a").contains("average"), f.log("a"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/work/a/round-1/merged/average"), "a refused model is not installed")
    }

    // MARK: item 14 — a failed evaluation ends the agent; one workdir, one agent

    func testFailedEvaluationIsReportedAndEndsTheAgentInsteadOfHanging() throws {
        let f = try setUpFederation("eval-fails", agents: ["a"])
        let fake = try FakeAggregator(endpoint: f.endpoint, certificates: f.root + "/certs")
        try f.start("a", ["agent", "agent-a.yaml", "--once", "--connect-timeout", "60"])
        XCTAssertTrue(fake.serve { $0.contains(where: isHello) })
        // After the start-up checks passed: the test split gains a label the model does not know.
        let test = f.root + "/data/a/test.csv"
        try ("text,label\ngood movie,positive\nso so film,neutral\n").write(toFile: test, atomically: true, encoding: .utf8)
        try fake.send(distributingWelcome(methods: ["regmean"]))
        XCTAssertTrue(fake.serve { _ in fake.errors.contains { $0.method == "local" } }, "the failed local evaluation is reported")
        let report = try XCTUnwrap(fake.errors.first { $0.method == "local" })
        XCTAssertEqual(report.code, "eval_failed")
        XCTAssertTrue(report.message.contains("neutral"), report.message)
        XCTAssertTrue(try fake.deliver(merged: "regmean", file: f.root + "/work/a/prepared/model.safetensors"))
        XCTAssertTrue(fake.serve { _ in fake.errors.contains { $0.method == "regmean" } })
        XCTAssertEqual(f.wait("a", limit: 60), 1, "evaluated-or-failed everything: the agent exits 1")
        let log = f.log("a")
        XCTAssertTrue(log.contains("evaluation of 'local' failed") && log.contains("evaluation of 'regmean' failed"), log)
    }

    func testSecondAgentOnTheSameWorkdirExitsNamingTheHolder() throws {
        let f = try setUpFederation("lock", agents: ["a"])
        // Nobody listens: the first agent keeps retrying, holding the workdir.
        let first = try f.start("first", ["agent", "agent-a.yaml", "--once", "--connect-timeout", "120"])
        XCTAssertTrue(f.waitUntil(limit: 60) { f.log("first").contains("link lost") }, f.log("first"))
        try f.start("second", ["agent", "agent-a.yaml", "--once", "--connect-timeout", "120"])
        XCTAssertEqual(f.wait("second", limit: 30), 2)
        let log = f.log("second")
        XCTAssertTrue(log.contains("work/a/agent.lock") && log.contains("process \(first.processIdentifier)"), log)
        XCTAssertTrue(first.isRunning, "the holder is left alone")
        f.kill("first")
    }

    // MARK: item 10 — the connect timeout counts from the link loss

    func testAgentRunningLongerThanItsConnectTimeoutSurvivesAnAggregatorRestart() throws {
        let f = try setUpFederation("reconnect", agents: ["a", "b"])
        try f.writeAggregatorConfig(subset: ["a", "b"], allow: ["a", "b"], methods: "    - {merge_method: average}")
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        let started = Date()
        // Before its first admission an agent's clock runs from its start: let the aggregator
        // bind first, so a 5 s timeout is not spent on the aggregator's own start-up.
        XCTAssertTrue(f.waitUntil(limit: 120) { f.log("aggregator").contains("aggregator listening") }, f.log("aggregator"))
        try f.start("a", ["agent", "agent-a.yaml", "--once", "--connect-timeout", "5"])
        XCTAssertTrue(f.waitUntil(limit: 300) { f.uploadComplete("a", files: ["config.json", "model.safetensors"]) }, "a uploaded")
        // Older than its connect timeout, and connected all along (b is not there yet).
        Thread.sleep(forTimeInterval: max(0, 6 - Date().timeIntervalSince(started)))
        f.kill("aggregator")
        try f.start("aggregator-restarted", ["aggregator", "aggregator.yaml", "--once"])
        try f.start("b", ["agent", "agent-b.yaml", "--once", "--connect-timeout", "120"])
        XCTAssertEqual(f.wait("aggregator-restarted"), 0, "the round completes")
        XCTAssertEqual(f.wait("a", limit: 60), 0, "a reconnected and finished")
        XCTAssertTrue(f.log("a").contains("link lost"), "a did lose its link")
    }

    /// Issue 12: an enrolled agent (no --once) outlives any aggregator downtime, retrying 1 s,
    /// 2 s, 4 s … (capped at 60 s) apart; with --once the same downtime ends it after
    /// --connect-timeout (exit 1). "reconnecting in 8.0 s" needs 1 + 2 + 4 s of waits alone,
    /// more than the 2 s timeout, however fast each attempt fails.
    func testEnrolledAgentOutlivesItsConnectTimeoutWhileOnceGivesUp() throws {
        let f = try setUpFederation("backoff", agents: ["a"])       // nobody listens
        let enrolled = try f.start("enrolled", ["agent", "agent-a.yaml", "--connect-timeout", "2"])
        XCTAssertTrue(f.waitUntil(limit: 180) { f.log("enrolled").contains("reconnecting in 8.0 s") || !enrolled.isRunning }, f.log("enrolled"))
        XCTAssertTrue(enrolled.isRunning, f.log("enrolled"))
        XCTAssertFalse(f.log("enrolled").contains("giving up"), f.log("enrolled"))
        f.kill("enrolled", signal: SIGTERM)
        XCTAssertEqual(f.wait("enrolled", limit: 60), 130, "stopped, not failed")

        try f.start("once", ["agent", "agent-a.yaml", "--once", "--connect-timeout", "2"])
        XCTAssertEqual(f.wait("once", limit: 120), 1, f.log("once"))
        XCTAssertTrue(f.log("once").contains("giving up: no link to the aggregator"), f.log("once"))
    }

    /// A signal while the worker thread fine-tunes: the agent ends at once as interrupted (130),
    /// abandoning the job without running the libraries' exit handlers beside it (a SIGSEGV in
    /// OpenBLAS was seen once when a --once agent exited while scoring; intermittent, so this
    /// test pins the abandon path, not the crash), and leaves no half-written model.
    func testASignalDuringFineTuningStopsTheAgentCleanly() throws {
        let f = try setUpFederation("stop-while-training", agents: ["a"])
        try f.writeAggregatorConfig(subset: ["a"], allow: ["a"], methods: "    - {merge_method: average}")
        let path = f.root + "/agent-a.yaml"
        try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "epochs: 2", with: "epochs: 1000")
            .write(toFile: path, atomically: true, encoding: .utf8)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        let agent = try f.start("a", ["agent", "agent-a.yaml", "--once", "--connect-timeout", "120"])
        XCTAssertTrue(f.waitUntil(limit: 300) { f.log("a").contains("fine-tuning") || !agent.isRunning }, f.log("a"))
        Thread.sleep(forTimeInterval: 1)
        XCTAssertTrue(agent.isRunning, "still fine-tuning (1000 epochs): \(f.log("a"))")
        f.kill("a", signal: SIGTERM)
        XCTAssertEqual(f.wait("a", limit: 60), 130, f.log("a"))
        XCTAssertTrue(f.log("a").contains("leaving the unfinished background job"), f.log("a"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/work/a/prepared/model.safetensors"), "no model from a stopped fine-tuning")
    }

    // MARK: items 7 and 15 — named start-up errors and exit codes

    /// Runs `fedmerge agent CONFIG ARGS` to its end and returns (status, log).
    private func run(_ f: Federation, _ label: String, _ arguments: [String]) throws -> (Int32?, String) {
        try f.start(label, ["agent", "--once"] + arguments)
        let status = f.wait(label, limit: 60)
        f.kill(label)
        return (status, f.log(label))
    }

    /// agent-a.yaml with `replacing` swapped for `with`, saved as NAME.yaml.
    private func variant(_ f: Federation, _ name: String, replacing: String, with: String) throws -> String {
        let text = try String(contentsOfFile: f.root + "/agent-a.yaml", encoding: .utf8)
        XCTAssertTrue(text.contains(replacing), "agent-a.yaml has '\(replacing)'")
        try text.replacingOccurrences(of: replacing, with: with).write(toFile: f.root + "/\(name).yaml", atomically: true, encoding: .utf8)
        return name + ".yaml"
    }

    func testCheckReadsTheDataFilesAndNamesFileAndLine() throws {
        let f = try setUpFederation("check-data", agents: ["a"])
        let dir = f.root + "/bad"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let good = try String(contentsOfFile: f.root + "/data/a/train.csv", encoding: .utf8)
        let cases: [(file: String, bytes: Data, expect: [String])] = [
            ("empty.csv", Data("text,label\n".utf8), ["empty.csv", "no examples"]),
            ("nolabel.csv", Data("text,sentiment\ngood film,positive\n".utf8), ["nolabel.csv", "no column \"label\""]),
            ("unknown.csv", Data("text,label\ngood film,positive\nmeh film,neutral\n".utf8), ["unknown.csv:3", "neutral"]),
            ("latin1.csv", Data("text,label\ngood film,positive\n".utf8) + Data([0x63, 0x61, 0x66, 0xE9, 0x2C]) + Data("negative\n".utf8),
             ["latin1.csv:3", "UTF-8"]),
            ("empty.jsonl", Data(), ["empty.jsonl", "no examples"]),
        ]
        for (file, bytes, expect) in cases {
            try bytes.write(to: URL(fileURLWithPath: dir + "/" + file))
            for role in ["train", "test"] {
                let other = role == "train" ? "test" : "train"
                let config = try variant(f, "\(role)-\(file)", replacing: "data: {train: data/a/train.csv, test: data/a/test.csv",
                                         with: "data: {\(role): bad/\(file), \(other): data/a/\(other).csv")
                let (status, log) = try run(f, "\(role)-\(file)", [config, "--check"])
                XCTAssertEqual(status, 2, "\(role) = \(file): \(log)")
                for text in expect { XCTAssertTrue(log.contains(text), "\(role) = \(file): expected '\(text)' in \(log)") }
            }
        }
        XCTAssertFalse(good.isEmpty)
        let (status, log) = try run(f, "good", ["agent-a.yaml", "--check"])
        XCTAssertEqual(status, 0, log)
    }

    func testStartUpFailuresExitWithNamedReasons() throws {
        let f = try setUpFederation("startup", agents: ["a"])
        // Item 7: a name that would become a path.
        var config = try variant(f, "traversal-name", replacing: "name: a", with: "name: ../../tmp/x")
        var (status, log) = try run(f, "traversal-name", [config, "--check"])
        XCTAssertEqual(status, 2, log)
        XCTAssertTrue(log.contains("'name'") && log.contains("../../tmp/x"), log)

        // A workdir that cannot be made (its parent is a file).
        config = try variant(f, "workdir", replacing: "workdir: work/a", with: "workdir: data/a/train.csv/work")
        (status, log) = try run(f, "workdir", [config])
        XCTAssertEqual(status, 2, log)
        XCTAssertTrue(log.contains("data/a/train.csv/work") && log.contains("workdir"), log)
        XCTAssertFalse(log.contains("NSCocoaErrorDomain"), log)

        // A base model directory without the model.
        try FileManager.default.createDirectory(atPath: f.root + "/empty-base", withIntermediateDirectories: true)
        config = try variant(f, "base", replacing: "base_model: base", with: "base_model: empty-base")
        (status, log) = try run(f, "base", [config])
        XCTAssertEqual(status, 2, log)
        XCTAssertTrue(log.contains("empty-base") && log.contains("base_model"), log)
        XCTAssertFalse(log.contains("NSCocoaErrorDomain"), log)

        // A private key that is not PEM: TLS credentials, exit 4, naming the file.
        try "not a key\n".write(toFile: f.root + "/certs/garbage.key", atomically: true, encoding: .utf8)
        config = try variant(f, "key", replacing: "key: certs/a.key", with: "key: certs/garbage.key")
        (status, log) = try run(f, "key", [config, "--connect-timeout", "5"])
        XCTAssertEqual(status, 4, log)
        XCTAssertTrue(log.contains("garbage.key"), log)
    }
}
