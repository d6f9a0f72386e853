// The fleet benchmark (`fedmerge bench fleet`): one real aggregator process (`--once`, one
// inline merge whose subset is all K agents) and K lightweight agents — the real agent daemon
// as separate processes, whose local work is a pre-made contribution (one real fine-tuned
// model and its statistics, perturbed per agent by FleetPerturbation) and a fixed evaluation
// score — for each K. It measures from outside, as an operator would: the spool and output
// directories, the report, and /proc/<pid>/status of the aggregator.

import Foundation

public struct FleetSettings: Sendable {
    /// The `fedmerge` binary (agents run `fedmerge bench fleet --agent CONFIG`).
    public var executable: String
    /// Scratch directory: certificates, agents' contributions, one round at a time.
    public var workdir: String
    /// A prepared model directory with model.safetensors, stats.safetensors and config.json
    /// (e.g. an agent's `workdir/prepared/` after a demo run).
    public var source: String
    public var baseModel: String
    public var ks: [Int]
    /// Agents uploading at once: a new agent starts when fewer than this are still uploading.
    public var concurrency: Int
    public var noise: Double
    /// (label, YAML flow mapping) of the methods every round runs.
    public var methods: [(label: String, yaml: String)]
    /// MaTS K-FAC, run only while K ≤ `upTo` (its memory grows with K).
    public var mats: (label: String, yaml: String, upTo: Int)?
    /// Seconds a round may take before it is abandoned.
    public var roundTimeout: Double

    public init(executable: String, workdir: String, source: String, baseModel: String, ks: [Int], concurrency: Int, noise: Double,
                methods: [(label: String, yaml: String)], mats: (label: String, yaml: String, upTo: Int)?, roundTimeout: Double) {
        self.executable = executable
        self.workdir = workdir
        self.source = source
        self.baseModel = baseModel
        self.ks = ks
        self.concurrency = concurrency
        self.noise = noise
        self.methods = methods
        self.mats = mats
        self.roundTimeout = roundTimeout
    }
}

public enum FleetError: Error, CustomStringConvertible {
    case missingSource(path: String)
    case agentFailed(agent: String, status: Int32, log: String, tail: String)
    case aggregatorFailed(status: Int32, log: String, tail: String)
    case timedOut(agents: Int, seconds: Double, waitingFor: String, log: String)
    case cannotCreateLog(path: String)

    public var description: String {
        switch self {
        case .missingSource(let path): return "\(path) does not exist: the fleet needs a prepared model directory with model.safetensors, stats.safetensors and config.json (run scripts/demo.sh once, or pass --source)"
        case let .agentFailed(agent, status, log, tail): return "agent \(agent) exited with status \(status) (log \(log)):\n\(tail)"
        case let .aggregatorFailed(status, log, tail): return "the aggregator exited with status \(status) (log \(log)):\n\(tail)"
        case let .timedOut(agents, seconds, waiting, log): return "K = \(agents): no progress after \(Int(seconds)) s, still waiting for \(waiting) (aggregator log \(log))"
        case .cannotCreateLog(let path): return "cannot create the log file \(path) (is its directory writable?)"
        }
    }
}

public final class FleetRun {
    public let settings: FleetSettings
    /// Printed as the run goes (the console).
    public var progress: (String) -> Void = { print($0) }
    var certs: String { settings.workdir + "/certs" }
    var agentsRoot: String { settings.workdir + "/agents" }
    var labels: [String] = []

    public init(settings: FleetSettings) { self.settings = settings }

    public static func agentName(_ i: Int) -> String { String(format: "agent-%03d", i) }
    var maxK: Int { settings.ks.max() ?? 0 }

    // MARK: set-up (once for every K)

    /// Certificates, the agents' data stubs and their perturbed contributions (agent i: seed i).
    public func prepare() throws {
        for file in ["model.safetensors", "stats.safetensors", "config.json"] where !FileManager.default.fileExists(atPath: settings.source + "/" + file) {
            throw FleetError.missingSource(path: settings.source + "/" + file)
        }
        labels = try Self.labels(configJSON: settings.source + "/config.json")
        let logs = settings.workdir + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: certs + "/ca.pem") {
            try run(["certs", "init", "--dir", certs, "--force"], log: logs + "/certs.log")
            try run(["certs", "issue", "--dir", certs, "--name", "aggregator", "--server", "--force"], log: logs + "/certs.log")
        }
        // Each agent's data stub: the daemon's config names train and test files; the fleet's
        // local work never reads them (no fine-tuning, a fixed score).
        let data = settings.workdir + "/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let rows = "text,label\n" + labels.map { "a stub sentence,\($0)\n" }.joined()
        for file in ["train.csv", "test.csv"] { try rows.write(toFile: data + "/" + file, atomically: true, encoding: .utf8) }

        let started = Date()
        for i in 1...maxK {
            let name = Self.agentName(i)
            let prepared = agentsRoot + "/" + name + "/prepared"
            if !FileManager.default.fileExists(atPath: certs + "/\(name).pem") {
                try run(["certs", "issue", "--dir", certs, "--name", name, "--force"], log: logs + "/certs.log")
            }
            let marker = prepared + "/.fleet-seed"
            let want = "seed \(i) noise \(settings.noise) source \(settings.source)"
            if (try? String(contentsOfFile: marker, encoding: .utf8)) == want { continue }
            try? FileManager.default.removeItem(atPath: prepared)
            try FileManager.default.createDirectory(atPath: prepared, withIntermediateDirectories: true)
            let perturbation = FleetPerturbation(seed: UInt64(i), scale: settings.noise)
            try perturbation.write(settings.source + "/model.safetensors", to: prepared + "/model.safetensors") { _ in .weight }
            try perturbation.write(settings.source + "/stats.safetensors", to: prepared + "/stats.safetensors", rule: FleetPerturbation.statisticsRule)
            for side in ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
            where FileManager.default.fileExists(atPath: settings.source + "/" + side) {
                try FileManager.default.copyItem(atPath: settings.source + "/" + side, toPath: prepared + "/" + side)
            }
            try want.write(toFile: marker, atomically: true, encoding: .utf8)
        }
        progress("\(maxK) contributions ready in \(agentsRoot) (\(String(format: "%.0f", Date().timeIntervalSince(started))) s to perturb and write)")
    }

    /// Label names in id order from a config.json's id2label.
    static func labels(configJSON path: String) throws -> [String] {
        let object = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let map = (object?["id2label"] as? [String: String]) ?? [:]
        return map.keys.compactMap(Int.init).sorted().map { map[String($0)]! }
    }

    // MARK: one round

    /// Runs one round with agents 1…K and measures it; removes the round's spool, output and
    /// the agents' downloads afterwards (disk: K × the contribution size).
    public func round(agents k: Int) throws -> FleetRow {
        let dir = settings.workdir + "/round-k\(k)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir + "/spool"); try? FileManager.default.removeItem(atPath: dir + "/output") }
        let names = (1...k).map(Self.agentName)
        for name in names { try? FileManager.default.removeItem(atPath: agentsRoot + "/" + name + "/round-1") }
        let port = try Federation.freePort()
        var methods = settings.methods
        var skipped: [String: String] = [:]
        if let mats = settings.mats {
            if k <= mats.upTo { methods.append((mats.label, mats.yaml)) } else { skipped[mats.label] = "K > --mats-up-to \(mats.upTo) (its memory grows with K; the aggregator refuses it beyond max_models)" }
        }
        let aggregatorConfig = try writeAggregatorConfig(dir: dir, port: port, subset: names, methods: methods)
        let agentConfigs = try names.map { try writeAgentConfig(name: $0, dir: dir, port: port) }

        let aggregatorLog = dir + "/logs/aggregator.log"
        let aggregator = try start(["aggregator", aggregatorConfig, "--once"], log: aggregatorLog)
        defer { if aggregator.isRunning { aggregator.terminate() } }
        var agents: [Process] = []
        defer { for p in agents where p.isRunning { p.terminate() } }

        let store = dir + "/spool/store"
        let output = dir + "/output/round-1"
        var committed = Set<String>()
        var peak: UInt64 = 0
        var peakAfterUploads: UInt64?
        let t0 = Date()
        var tUploads: Date?
        var tMerged: Date?
        var tAgentsDone: Date?
        var lastProgress = Date()
        while true {
            if let m = ProcessMemory.of(pid: aggregator.processIdentifier) { peak = max(peak, m.peakBytes) }
            // Start agents while fewer than `concurrency` are still uploading.
            while agents.count < k && agents.count - committed.count < settings.concurrency {
                let name = names[agents.count]
                agents.append(try start(["bench", "fleet", "--agent", agentConfigs[agents.count]], log: dir + "/logs/\(name).log"))
            }
            for name in names.prefix(agents.count) where !committed.contains(name) && Self.hasCommittedContribution(store + "/" + name) {
                committed.insert(name)
                lastProgress = Date()
            }
            if tUploads == nil && committed.count == k { tUploads = Date(); peakAfterUploads = peak }
            if tMerged == nil && methods.allSatisfy({ FileManager.default.fileExists(atPath: output + "/" + $0.label + "/model.safetensors") }) {
                tMerged = Date()
                lastProgress = Date()
            }
            for (i, p) in agents.enumerated() where !p.isRunning && p.terminationStatus != 0 {
                throw FleetError.agentFailed(agent: names[i], status: p.terminationStatus, log: dir + "/logs/\(names[i]).log",
                                             tail: Self.tail(dir + "/logs/\(names[i]).log"))
            }
            if tAgentsDone == nil && agents.count == k && agents.allSatisfy({ !$0.isRunning }) { tAgentsDone = Date() }
            if !aggregator.isRunning {
                guard aggregator.terminationStatus == 0 else {
                    throw FleetError.aggregatorFailed(status: aggregator.terminationStatus, log: aggregatorLog, tail: Self.tail(aggregatorLog))
                }
                if tAgentsDone != nil || agents.allSatisfy({ !$0.isRunning }) { break }
            }
            if Date().timeIntervalSince(lastProgress) > settings.roundTimeout {
                let waiting = tUploads == nil ? "uploads (\(committed.count) of \(k) committed)" : tMerged == nil ? "merges" : "agents to finish"
                throw FleetError.timedOut(agents: k, seconds: settings.roundTimeout, waitingFor: waiting, log: aggregatorLog)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let end = tAgentsDone ?? Date()
        let report = try Federation.readJSON(output + "/report.json") as? [String: Any]
        let uploads = (report?["uploads"] as? [String: [String: Any]]) ?? [:]
        let payload = uploads.values.compactMap { ($0["payload_bytes"] as? NSNumber)?.uint64Value }
        let row = FleetRow(agents: k, uploadSeconds: (tUploads ?? end).timeIntervalSince(t0),
                           mergeSeconds: try Federation.readMergeSeconds(output + "/report.json"),
                           checkAndMergeSeconds: (tMerged ?? end).timeIntervalSince(tUploads ?? t0),
                           distributionSeconds: end.timeIntervalSince(tMerged ?? end),
                           peakBytesAfterUploads: peakAfterUploads ?? peak, peakBytes: peak,
                           spoolBytes: Self.bytes(under: store),
                           uploadBytesPerAgent: payload.isEmpty ? 0 : payload.reduce(0, +) / UInt64(payload.count), skipped: skipped)
        for name in names { try? FileManager.default.removeItem(atPath: agentsRoot + "/" + name + "/round-1") }
        return row
    }

    /// A contribution is committed when config.json, model.safetensors and stats.safetensors
    /// are under their final names in one fingerprint directory (renamed there only after
    /// their SHA-256 matched).
    static func hasCommittedContribution(_ agentStore: String) -> Bool {
        let fingerprints = (try? FileManager.default.contentsOfDirectory(atPath: agentStore)) ?? []
        return fingerprints.contains { fp in
            ["config.json", "model.safetensors", "stats.safetensors"].allSatisfy { FileManager.default.fileExists(atPath: agentStore + "/" + fp + "/" + $0) }
        }
    }

    /// Total size of the regular files under `path`.
    static func bytes(under path: String) -> UInt64 {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: UInt64 = 0
        while let relative = walker.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + relative)
            if attributes?[.type] as? FileAttributeType == .typeRegular { total += (attributes?[.size] as? NSNumber)?.uint64Value ?? 0 }
        }
        return total
    }

    // MARK: configs and processes

    func writeAggregatorConfig(dir: String, port: Int, subset: [String], methods: [(label: String, yaml: String)]) throws -> String {
        let path = dir + "/aggregator.yaml"
        let allow = (1...maxK).map(Self.agentName)
        try """
        listen: tcp://127.0.0.1:\(port)
        tls: {ca: \(certs)/ca.pem, cert: \(certs)/aggregator.pem, key: \(certs)/aggregator.key}
        allow: [\(allow.joined(separator: ", "))]
        spool: \(dir)/spool
        output: \(dir)/output
        round:
          id: 1
          base_model: \(settings.baseModel)
          subset: [\(subset.joined(separator: ", "))]
          min_agents: \(subset.count)
          deadline: 7200
          eval_timeout: 3600
          heads: average
          methods:
        \(methods.map { "    - " + $0.yaml }.joined(separator: "\n"))

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func writeAgentConfig(name: String, dir: String, port: Int) throws -> String {
        let path = dir + "/agent-\(name).yaml"
        let work = agentsRoot + "/" + name
        try """
        name: \(name)
        aggregator: tcp://127.0.0.1:\(port)
        tls: {ca: \(certs)/ca.pem, cert: \(certs)/\(name).pem, key: \(certs)/\(name).key}
        base_model: \(settings.baseModel)
        data: {train: \(settings.workdir)/data/train.csv, test: \(settings.workdir)/data/test.csv, labels: [\(labels.joined(separator: ", "))]}
        finetuned: \(work)/prepared
        workdir: \(work)

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func start(_ arguments: [String], log: String) throws -> Process {
        guard FileManager.default.createFile(atPath: log, contents: nil) else {
            throw FleetError.cannotCreateLog(path: log)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: settings.executable)
        p.arguments = arguments
        // Agents do no arithmetic; one BLAS thread each keeps 64 of them from reserving buffers.
        var environment = ProcessInfo.processInfo.environment
        if arguments.first == "bench" { environment["OPENBLAS_NUM_THREADS"] = "1" }
        p.environment = environment
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    func run(_ arguments: [String], log: String) throws {
        let p = try start(arguments, log: log)
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            throw FleetError.agentFailed(agent: "fedmerge " + arguments.joined(separator: " "), status: p.terminationStatus, log: log, tail: Self.tail(log))
        }
    }

    static func tail(_ log: String) -> String {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(15).joined(separator: "\n")
    }
}
