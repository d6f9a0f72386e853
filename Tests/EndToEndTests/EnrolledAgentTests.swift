// Agents without --once stay enrolled: one `fedmerge agent` process per agent, started once,
// keeps its link to a running aggregator service and evaluates a second merge defined after
// the first was reported — asking for it with a HELLO on the same link and uploading nothing
// again (its contribution fingerprint is stored).

import Foundation
import XCTest

final class EnrolledAgentTests: FederationTestCase {
    private func writeMerge(_ f: Federation, _ name: String, _ yaml: String) throws {
        try FileManager.default.createDirectory(atPath: f.root + "/merges", withIntermediateDirectories: true)
        try yaml.write(toFile: f.root + "/\(name).yaml.tmp", atomically: true, encoding: .utf8)
        try FileManager.default.moveItem(atPath: f.root + "/\(name).yaml.tmp", toPath: f.root + "/merges/\(name).yaml")
    }

    private func report(_ f: Federation, _ merge: String) throws -> [String: Any] {
        let path = f.root + "/output/\(merge)/report.json"
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any], path)
    }

    func testEnrolledAgentsEvaluateALaterMergeWithoutRestartOrUpload() throws {
        let f = try Federation(name: "enrolled")
        federation = f
        let agents = ["a", "b"]
        try f.makeCertificates(agents: agents)
        try f.makeBaseModel()
        for (i, agent) in agents.enumerated() {
            try f.makeData(agent: agent, domain: ["alpha", "beta"][i], seed: UInt64(500 + i))
            try f.writeAgentConfig(agent)
        }
        try """
        listen: \(f.endpoint)
        tls: {ca: certs/ca.pem, cert: certs/aggregator.pem, key: certs/aggregator.key}
        allow: [a, b]
        spool: spool
        output: output
        base_model: base
        merges: merges
        """.write(toFile: f.root + "/aggregator.yaml", atomically: true, encoding: .utf8)
        try writeMerge(f, "first", "subset: [a, b]\nmethods:\n  - {merge_method: average}\n")
        try f.start("aggregator", ["aggregator", "aggregator.yaml"])
        XCTAssertTrue(f.waitUntil(limit: 60) { f.log("aggregator").contains("aggregator listening") }, f.log("aggregator"))
        let processes = try agents.map { try f.start($0, ["agent", "agent-\($0).yaml", "--connect-timeout", "300"]) }

        XCTAssertTrue(f.waitUntil(limit: 600) { FileManager.default.fileExists(atPath: f.root + "/output/first/report.json") }, "merge 'first' reported")
        // The second merge appears only now; the same agent processes must serve it.
        try writeMerge(f, "second", "subset: [a, b]\nmethods:\n  - {merge_method: average, name: average-again}\n")
        XCTAssertTrue(f.waitUntil(limit: 600) { FileManager.default.fileExists(atPath: f.root + "/output/second/report.json") }, "merge 'second' reported")

        for (merge, method) in [("first", "average"), ("second", "average-again")] {
            let evaluations = try XCTUnwrap(try report(f, merge)["evaluations"] as? [String: [String: Any]], merge)
            for agent in agents { XCTAssertEqual(Set(evaluations[agent]?.keys ?? [:].keys), [method, "local"], "\(merge)/\(agent)") }
        }
        for (agent, process) in zip(agents, processes) {
            XCTAssertTrue(process.isRunning, "\(agent) is still enrolled after two merges")
            let lines = f.log(agent).components(separatedBy: "\n")
            XCTAssertEqual(lines.filter { $0.contains("uploading") }.count, 2, "\(agent) uploaded config.json and model.safetensors once")
            XCTAssertEqual(lines.filter { $0.contains("link lost") }.count, 0, "\(agent) kept its one link")
            XCTAssertTrue(f.log(agent).contains("next merge"), "\(agent) moved on to the next merge on its link")
        }
        // Stopping an enrolled agent is a signal; it exits as interrupted (resumable).
        for agent in agents { f.kill(agent, signal: SIGTERM) }
        for agent in agents { XCTAssertNotNil(f.wait(agent, limit: 60), "\(agent) stops on SIGTERM") }
    }
}
