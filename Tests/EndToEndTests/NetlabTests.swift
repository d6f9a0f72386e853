// End-to-end over real network paths: the aggregator and three agents in their own network
// namespaces (scripts/netlab.sh), on shaped links, one link cut for 20 s mid-upload. The
// round must merge exactly what the same federation merges on loopback: same seeds, same
// fine-tuned models, same merge, byte for byte. Needs root and `ip netns`; skipped otherwise.

import Foundation
import XCTest

final class NetlabTests: XCTestCase {
    private var federations: [Federation] = []
    private var labUp = false

    override func tearDown() {
        if testRun?.failureCount ?? 0 > 0 { for f in federations { print(f.logs()) } }
        // NETLAB_KEEP=1 keeps the federation directories (for `scripts/netlab.sh run`).
        let keep = ProcessInfo.processInfo.environment["NETLAB_KEEP"] == "1"
        for f in federations {
            if keep { f.stopAll(); print("netlab: kept \(f.root)") } else { f.cleanUp() }
        }
        if labUp { _ = try? Self.netlab(["down"]) }
        super.tearDown()
    }

    /// Runs scripts/netlab.sh with `arguments`; its exit status.
    @discardableResult
    static func netlab(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Federation.netlabScript)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Skips with the reason unless this machine can make network namespaces. The lab's
    /// namespaces get a prefix of this test process's own (NETLAB_PREFIX, inherited by every
    /// netlab.sh and daemon started from here), so two test runs on one machine — CI jobs,
    /// several worktrees — never tear down each other's lab.
    static func requireLab() throws {
        guard getuid() == 0 else { throw XCTSkip("netlab needs root (network namespaces)") }
        let prefix = "fm\(getpid() % 1_000_000)"
        setenv("NETLAB_PREFIX", prefix, 1)
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/bin/sh")
        probe.arguments = ["-c", "command -v ip >/dev/null && ip netns add \(prefix)probe && ip netns del \(prefix)probe"]
        try probe.run()
        probe.waitUntilExit()
        guard probe.terminationStatus == 0 else { throw XCTSkip("netlab needs `ip netns` (iproute2, CAP_SYS_ADMIN)") }
    }

    private func federation(_ name: String, agents: [String]) throws -> Federation {
        let f = try Federation(name: name)
        federations.append(f)
        try f.makeCertificates(agents: agents)
        try f.makeBaseModel()
        for (i, agent) in agents.enumerated() {
            try f.makeData(agent: agent, domain: ["alpha", "beta", "gamma"][i], seed: UInt64(100 + i))
        }
        return f
    }

    func testShapedRoundWithALinkCutMidUploadMergesWhatLoopbackMerges() throws {
        try Self.requireLab()
        let agents = ["a", "b", "c"]
        let methods = ["regmean", "fisher", "average"]

        // The reference: the same federation on loopback.
        let loopback = try federation("netlab-loopback", agents: agents)
        for agent in agents { try loopback.writeAgentConfig(agent) }
        try loopback.writeAggregatorConfig(subset: agents, allow: agents, methods: Federation.threeMethods)
        try loopback.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in agents { try loopback.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }
        XCTAssertEqual(loopback.wait("aggregator"), 0, "the loopback round completes")

        // The lab: a on "wan", b and c on "bad"; c's link goes down for 20 s once its upload began.
        XCTAssertEqual(try Self.netlab(["up"] + agents), 0, "netlab up")
        labUp = true
        for (agent, profile) in [("a", "wan"), ("b", "bad"), ("c", "bad")] {
            XCTAssertEqual(try Self.netlab(["shape", agent, profile]), 0, "shape \(agent) \(profile)")
        }
        let lab = try federation("netlab-lab", agents: agents)
        lab.host = "10.77.0.1"
        for agent in agents { try lab.writeAgentConfig(agent) }
        try lab.writeAggregatorConfig(subset: agents, allow: agents, methods: Federation.threeMethods)
        try lab.start("aggregator", ["aggregator", "aggregator.yaml", "--once"], netlabHost: "agg")
        for agent in agents { try lab.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"], netlabHost: agent) }

        // Mid-upload: as soon as c is admitted (its store directory appears, polled every 10 ms),
        // its files are on their way. Not later: the whole tiny upload fits in the socket
        // buffers, so by the time a .partial file grows every byte may have left the agent.
        let storeOfC = lab.root + "/spool/store/c"
        let until = Date().addingTimeInterval(300)
        while !FileManager.default.fileExists(atPath: storeOfC) && Date() < until && lab.processes["aggregator"]?.isRunning == true { usleep(10_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: storeOfC), "c is admitted")
        let cut = Process()
        cut.executableURL = URL(fileURLWithPath: Federation.netlabScript)
        cut.arguments = ["cut", "c", "20"]
        try cut.run()
        XCTAssertFalse(lab.uploadComplete("c"), "the cut began before c's upload was complete")

        XCTAssertEqual(lab.wait("aggregator", limit: 600), 0, "the lab round completes")
        cut.waitUntilExit()
        XCTAssertEqual(cut.terminationStatus, 0, "the link came back")

        for method in methods {
            let reference = try Data(contentsOf: URL(fileURLWithPath: loopback.root + "/output/round-1/\(method)/model.safetensors"))
            let merged = try Data(contentsOf: URL(fileURLWithPath: lab.root + "/output/round-1/\(method)/model.safetensors"))
            XCTAssertTrue(reference == merged, "\(method): the lab's merged model equals loopback's byte for byte")
        }

        // The report: payload bytes (at least every committed file's size) and seconds per agent.
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: lab.root + "/output/round-1/report.json"))) as? [String: Any])
        let uploads = try XCTUnwrap(report["uploads"] as? [String: [String: Any]])
        XCTAssertEqual(Set(uploads.keys), Set(agents))
        for agent in agents {
            let dir = try XCTUnwrap(lab.contributionDirectory(agent))
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }
            let stored = try files.reduce(UInt64(0)) { $0 + ((try FileManager.default.attributesOfItem(atPath: dir + "/" + $1)[.size] as? NSNumber)?.uint64Value ?? 0) }
            let payload = try XCTUnwrap((uploads[agent]?["payload_bytes"] as? NSNumber)?.uint64Value, agent)
            XCTAssertGreaterThanOrEqual(payload, stored, "\(agent): payload bytes cover the stored files")
            let seconds = try XCTUnwrap((uploads[agent]?["seconds"] as? NSNumber)?.doubleValue, agent)
            XCTAssertGreaterThan(seconds, 0, agent)
            let transfer = try XCTUnwrap((uploads[agent]?["transfer_seconds"] as? NSNumber)?.doubleValue, agent)
            XCTAssertLessThanOrEqual(transfer, seconds, "\(agent): the transfer lies inside admission → committed")
            // Not a speed check: c's upload was under way when its link went down for 20 s, so
            // it cannot have been committed sooner after its admission.
            if agent == "c" { XCTAssertGreaterThanOrEqual(seconds, 20, "the 20 s cut lay inside c's upload") }
            print("netlab upload \(agent): \(payload) bytes, \(String(format: "%.2f", seconds)) s from admission, \(String(format: "%.2f", transfer)) s transfer, links \(uploads[agent]?["links"] ?? "?")")
        }
    }
}
