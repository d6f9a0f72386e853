// The aggregator as a service, end to end: one running `fedmerge aggregator` (no --once)
// serves three merges from three merge files — two subsets and a method change — from
// contributions each agent uploaded exactly once (real `fedmerge agent` processes, restarted
// for each later merge: they find their fingerprint stored and upload nothing), then
// `fedmerge aggregator forget c` re-runs every merge that used c, and the result equals a
// fresh offline merge of the remaining agents for regmean, fisher and average.

import Foundation
import LinAlg
import SafeTensors
import XCTest

final class ServiceTests: FederationTestCase {
    private func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any], path)
    }

    private func writeMerge(_ f: Federation, _ name: String, _ yaml: String) throws {
        try FileManager.default.createDirectory(atPath: f.root + "/merges", withIntermediateDirectories: true)
        // Written elsewhere and renamed in, so the aggregator never reads half a file.
        try yaml.write(toFile: f.root + "/\(name).yaml.tmp", atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(atPath: f.root + "/\(name).yaml.tmp", toPath: f.root + "/merges/\(name).yaml")
        // The directory is polled once a second; agents started before that would find nothing to do.
        XCTAssertTrue(f.waitUntil(limit: 30) { FileManager.default.fileExists(atPath: f.root + "/output/\(name)/merge.json") }, "merge file \(name) picked up")
    }

    /// Runs the agents once more (each a new process) and waits for them to finish.
    private func runAgents(_ f: Federation, _ agents: [String], pass: Int) {
        for agent in agents { XCTAssertNoThrow(try f.start("\(agent)-\(pass)", ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "300"])) }
        for agent in agents { XCTAssertEqual(f.wait("\(agent)-\(pass)", limit: 600), 0, "\(agent), pass \(pass)") }
    }

    func testOneServiceServesThreeMergeFilesFromOneUploadEachThenForgets() throws {
        let f = try Federation(name: "service")
        federation = f
        let agents = ["a", "b", "c"]
        try f.makeCertificates(agents: agents)
        try f.makeBaseModel()
        for (i, agent) in agents.enumerated() {
            try f.makeData(agent: agent, domain: ["alpha", "beta", "gamma"][i], seed: UInt64(300 + i))
            try f.writeAgentConfig(agent)
        }
        try """
        listen: \(f.endpoint)
        tls: {ca: certs/ca.pem, cert: certs/aggregator.pem, key: certs/aggregator.key}
        allow: [a, b, c]
        spool: spool
        output: output
        base_model: base
        merges: merges
        """.write(toFile: f.root + "/aggregator.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: f.root + "/merges", withIntermediateDirectories: true)
        try f.start("aggregator", ["aggregator", "aggregator.yaml"])
        XCTAssertTrue(f.waitUntil(limit: 60) { f.log("aggregator").contains("aggregator listening") }, f.log("aggregator"))

        // Merge 1: all three agents, three methods. Every agent uploads here, once.
        try writeMerge(f, "all", """
        subset: [a, b, c]
        methods:
          - {merge_method: regmean, parameters: {alpha: 0.9}}
          - {merge_method: fisher}
          - {merge_method: average}
        """)
        runAgents(f, agents, pass: 1)
        XCTAssertTrue(f.waitUntil(limit: 60) { FileManager.default.fileExists(atPath: f.root + "/output/all/report.json") }, "merge 'all' reported")
        var stamps: [String: [FileAttributeKey: Any]] = [:]
        for agent in agents {
            let dir = try XCTUnwrap(f.contributionDirectory(agent), "\(agent)'s contribution is stored")
            for file in ["model.safetensors", "stats.safetensors"] { stamps[agent + "/" + file] = try FileManager.default.attributesOfItem(atPath: dir + "/" + file) }
        }

        // Merge 2: another subset. Merge 3: the first subset with changed methods.
        try writeMerge(f, "ab", """
        subset: [a, b]
        methods:
          - {merge_method: regmean, parameters: {alpha: 0.9}}
          - {merge_method: fisher}
        """)
        runAgents(f, ["a", "b"], pass: 2)
        XCTAssertTrue(f.waitUntil(limit: 60) { FileManager.default.fileExists(atPath: f.root + "/output/ab/report.json") }, "merge 'ab' reported")
        try writeMerge(f, "all-alpha", """
        subset: [a, b, c]
        methods:
          - {merge_method: regmean, name: regmean-a0.5, parameters: {alpha: 0.5}}
          - {merge_method: average}
        """)
        runAgents(f, agents, pass: 3)
        XCTAssertTrue(f.waitUntil(limit: 60) { FileManager.default.fileExists(atPath: f.root + "/output/all-alpha/report.json") }, "merge 'all-alpha' reported")

        // Each report: its subset merged, every agent's EVAL of every model in.
        for (merge, members, methods) in [("all", agents, ["regmean", "fisher", "average"]), ("ab", ["a", "b"], ["regmean", "fisher"]),
                                          ("all-alpha", agents, ["regmean-a0.5", "average"])] {
            let report = try json(f.root + "/output/\(merge)/report.json")
            XCTAssertEqual(report["merged_agents"] as? [String], members, merge)
            XCTAssertEqual(report["missing_evaluations"] as? [String], [], merge)
            let evaluations = try XCTUnwrap(report["evaluations"] as? [String: [String: Any]], merge)
            for agent in members { XCTAssertEqual(Set(evaluations[agent]?.keys ?? [:].keys), Set(methods + ["local"]), "\(merge)/\(agent)") }
        }
        // Uploaded exactly once: the stored files were never rewritten, and every later agent run uploaded nothing.
        for agent in agents {
            let dir = try XCTUnwrap(f.contributionDirectory(agent))
            for file in ["model.safetensors", "stats.safetensors"] {
                let now = try FileManager.default.attributesOfItem(atPath: dir + "/" + file)
                XCTAssertEqual(now[.systemFileNumber] as? Int, stamps[agent + "/" + file]?[.systemFileNumber] as? Int, "\(agent)/\(file) inode")
                XCTAssertEqual(now[.modificationDate] as? Date, stamps[agent + "/" + file]?[.modificationDate] as? Date, "\(agent)/\(file) mtime")
            }
            let runs = f.log("\(agent)-1") + f.log("\(agent)-2") + f.log("\(agent)-3")
            let uploads = runs.components(separatedBy: "\n").filter { $0.contains("uploading") }
            XCTAssertEqual(uploads.count, 3, "\(agent) uploaded its three files once, in its first run:\n\(uploads.joined(separator: "\n"))")
            XCTAssertEqual(f.log("\(agent)-1").components(separatedBy: "\n").filter { $0.contains("uploading") }.count, 3, agent)
        }
        // The service's RegMean of the subset {a, b} equals the offline merge of those contributions.
        try f.offlineMerge("subset-ab-regmean", method: "regmean", parameters: "{alpha: 0.9, heads: average}", agents: ["a", "b"])
        XCTAssertLessThanOrEqual(try Federation.maxDifference(f.root + "/output/ab/regmean/model.safetensors", f.root + "/offline/subset-ab-regmean/model.safetensors"), 1e-6)

        // Forget c: its contribution goes, every merge that used it runs again without it.
        let cDirectory = try XCTUnwrap(f.contributionDirectory("c"))
        try f.start("forget", ["aggregator", "forget", "c", "--config", "aggregator.yaml"])
        XCTAssertEqual(f.wait("forget", limit: 120), 0, f.log("forget"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: cDirectory), "c's contribution is deleted")
        for merge in ["all", "all-alpha"] {
            XCTAssertTrue(f.waitUntil(limit: 300) {
                guard let record = try? self.json(f.root + "/output/\(merge)/merge.json") else { return false }
                return record["generation"] as? Int == 1 && ["distributing", "finished"].contains(record["phase"] as? String ?? "")
            }, "\(merge) merged again")
            let record = try json(f.root + "/output/\(merge)/merge.json")
            XCTAssertEqual(Set((record["members"] as? [String: String] ?? [:]).keys), ["a", "b"], merge)
        }
        XCTAssertEqual(try json(f.root + "/output/ab/merge.json")["generation"] as? Int, 0, "a merge without c is not redone")
        for (method, parameters) in [("regmean", "{alpha: 0.9, heads: average}"), ("fisher", "{heads: average}"), ("average", "{heads: average}")] {
            try f.offlineMerge("ab-\(method)", method: method, parameters: parameters, agents: ["a", "b"])
            let worst = try Federation.maxDifference(f.root + "/output/all/\(method)/model.safetensors", f.root + "/offline/ab-\(method)/model.safetensors")
            XCTAssertLessThanOrEqual(worst, 1e-6, "after forget, \(method) equals a fresh merge of a and b")
        }

        try f.start("status", ["status", "aggregator.yaml"])
        XCTAssertEqual(f.wait("status", limit: 60), 0)
        let status = f.log("status")
        print("fedmerge status after forget:\n\(status)")
        XCTAssertTrue(status.contains("aggregator: running"), status)
        XCTAssertTrue(status.contains("c: ") && status.contains("forgotten"), status)
        XCTAssertTrue(status.contains("ab (round 2, generation 0): finished; members a, b; methods regmean, fisher; EVALs 6/6"), status)
        let metrics = try String(contentsOfFile: f.root + "/spool/metrics.prom", encoding: .utf8)
        XCTAssertTrue(metrics.contains("# TYPE fedmerge_evals_received_total counter"), metrics)
        XCTAssertTrue(metrics.contains("fedmerge_merge_seconds{merge=\"ab\",method=\"regmean\"}"), metrics)
        print("metrics:\n\(metrics)")
        print("report of merge 'ab':\n" + ((try? String(contentsOfFile: f.root + "/output/ab/report.md", encoding: .utf8)) ?? ""))

        f.kill("aggregator", signal: SIGTERM)
        XCTAssertEqual(f.wait("aggregator", limit: 60), 130, "the service stops on SIGTERM")
    }

}
