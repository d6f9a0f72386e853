// Drives a real federation on loopback for the experiment: certificates, one aggregator and
// one agent process per member of the round (the `fedmerge` executable itself), each round's
// YAML configs written under the work directory, logs per process, exit statuses checked.

import AtomicIO
import Foundation
import Glibc

public enum FederationError: Error, CustomStringConvertible {
    case processFailed(what: String, status: Int32, log: String, tail: String)
    case timedOut(round: Int, seconds: Double, logs: String)
    case noFreePort
    case cannotCreateLog(String)
    public var description: String {
        switch self {
        case let .processFailed(what, status, log, tail): return "\(what) exited with status \(status) (log \(log)):\n\(tail)"
        case let .timedOut(round, seconds, logs): return "round \(round) did not finish within \(Int(seconds)) s (round_timeout); logs in \(logs)"
        case .noFreePort: return "could not find a free TCP port on 127.0.0.1"
        case let .cannotCreateLog(path): return "cannot create the log file \(path) (is its directory writable?)"
        }
    }
}

/// A merge method of a round, as it goes into the aggregator's `round.methods`.
public struct RoundMethod: Sendable {
    public var label: String
    public var yaml: String   // the flow mapping, e.g. {merge_method: regmean, parameters: {alpha: 0.9}}
    public var title: String  // its row in the reports
    public init(label: String, yaml: String, title: String) {
        self.label = label
        self.yaml = yaml
        self.title = title
    }
}

/// What a finished round left behind.
public struct RoundOutput: Sendable {
    public var id: Int
    public var subset: [String]
    public var agentEvalCap: Int?
    public var directory: String
    /// agent → method label → metric → value (the agents' EVALs).
    public var evaluations: [String: [String: [String: Double]]]
    /// method label → merge wall-clock seconds (aggregator).
    public var mergeSeconds: [String: Double]
    public var wallSeconds: Double
    public func mergedModel(_ label: String) -> String { directory + "/" + label }
}

public struct Federation {
    public let executable: String
    public let workdir: String
    public let baseModel: String
    public let config: ExperimentConfig
    public let agents: [AgentData]
    /// Each agent's fine-tuning seed in this run (the config's `agent_seeds`, or a `seeds` entry plus `agent_seed_offsets`).
    public var agentSeeds: [Int]
    var certs: String { workdir + "/certs" }

    public init(executable: String, workdir: String, config: ExperimentConfig, agents: [AgentData]) {
        self.executable = executable
        self.workdir = workdir
        self.baseModel = config.baseModel
        self.config = config
        self.agents = agents
        self.agentSeeds = config.agentSeeds
    }

    /// Runs `fedmerge ARGS` to completion; throws with the log's tail on failure.
    func run(_ arguments: [String], log: String, environment: [String: String] = [:]) throws {
        let p = try start(arguments, log: log, environment: environment)
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw failure("fedmerge " + arguments.joined(separator: " "), p, log) }
    }

    func start(_ arguments: [String], log: String, environment: [String: String] = [:]) throws -> Process {
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw FederationError.cannotCreateLog(log) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    func failure(_ what: String, _ p: Process, _ log: String) -> FederationError {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return .processFailed(what: what, status: p.terminationStatus, log: log,
                              tail: text.split(separator: "\n").suffix(15).joined(separator: "\n"))
    }

    /// One CA, a server certificate for the aggregator, one client certificate per agent.
    public func makeCertificates() throws {
        let logs = workdir + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        try run(["certs", "init", "--dir", certs, "--force"], log: logs + "/certs.log")
        try run(["certs", "issue", "--dir", certs, "--name", "aggregator", "--server", "--force"], log: logs + "/certs.log")
        for a in agents { try run(["certs", "issue", "--dir", certs, "--name", a.name, "--force"], log: logs + "/certs-\(a.name).log") }
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now (bound to port 0, then released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FederationError.noFreePort }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { throw FederationError.noFreePort }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Runs round `id` merging `subset` with `methods`; `agentEvalCap` caps the agents' own
    /// EVALs (nil: their whole test split). Returns once the aggregator and agents have exited.
    public func round(id: Int, subset: [String], methods: [RoundMethod], heads: String, agentEvalCap: Int?) throws -> RoundOutput {
        let dir = workdir + "/configs/round-\(id)"
        let logs = workdir + "/logs/round-\(id)"
        let output = workdir + "/output"
        try? FileManager.default.removeItem(atPath: output + "/round-\(id)")
        // Each round starts from an empty store: agents upload the statistics this round asks for.
        try? FileManager.default.removeItem(atPath: workdir + "/spool")
        for d in [dir, logs] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let port = try Self.freePort()
        let aggregatorYAML = """
        # Written by `fedmerge experiment` (\(config.file)): round \(id).
        listen: tcp://127.0.0.1:\(port)
        tls: {ca: \(certs)/ca.pem, cert: \(certs)/aggregator.pem, key: \(certs)/aggregator.key}
        allow: [\(agents.map(\.name).joined(separator: ", "))]
        spool: \(workdir)/spool
        output: \(output)
        round:
          id: \(id)
          base_model: \(baseModel)
          subset: [\(subset.joined(separator: ", "))]
          min_agents: \(subset.count)
          deadline: \(Int(config.roundTimeout))
          eval_timeout: \(Int(config.roundTimeout))
          heads: \(heads)
          methods:
        \(methods.map { "    - " + $0.yaml }.joined(separator: "\n"))

        """
        try AtomicFile.write(Data(aggregatorYAML.utf8), to: dir + "/aggregator.yaml")
        for (i, a) in agents.enumerated() where subset.contains(a.name) {
            let yaml = """
            # Written by `fedmerge experiment` (\(config.file)): agent \(a.name), round \(id).
            name: \(a.name)
            aggregator: tcp://127.0.0.1:\(port)
            server_name: aggregator
            tls: {ca: \(certs)/ca.pem, cert: \(certs)/\(a.name).pem, key: \(certs)/\(a.name).key}
            base_model: \(baseModel)
            data:
              train: \(a.trainPath)
              test: \(a.testPath)
              labels: [\(a.labels.map { "\"\($0)\"" }.joined(separator: ", "))]
            train: {epochs: \(config.epochs), lr: \(config.learningRate), batch_size: \(config.batchSize), max_len: \(a.maxLength), seed: \(agentSeeds[i])}
            stats: {gram_batches: \(config.gramBatches), fisher_examples: \(config.fisherExamples), fisher_labels: \(config.fisherLabels.rawValue), kfac_examples: \(config.kfacExamples)}
            eval: {max_len: \(a.maxLength)\(agentEvalCap.map { ", max_examples: \($0)" } ?? "")}
            workdir: \(workdir)/agents/\(a.name)

            """
            try AtomicFile.write(Data(yaml.utf8), to: dir + "/\(a.name).yaml")
        }

        // A round directory left by an interrupted earlier run would make an agent believe it
        // had already sent its EVALs (agents resume rounds); every run starts the round afresh.
        for a in agents where subset.contains(a.name) { try? FileManager.default.removeItem(atPath: workdir + "/agents/\(a.name)/round-\(id)") }
        let started = Date()
        let aggregatorLog = logs + "/aggregator.log"
        let aggregator = try start(["aggregator", dir + "/aggregator.yaml", "--once"], log: aggregatorLog)
        var children: [(String, Process, String)] = []
        defer { for (_, p, _) in children where p.isRunning { p.terminate() }; if aggregator.isRunning { aggregator.terminate() } }
        Thread.sleep(forTimeInterval: 1)
        for a in agents where subset.contains(a.name) {
            let log = logs + "/\(a.name).log"
            children.append((a.name, try start(["agent", dir + "/\(a.name).yaml", "--once"], log: log, environment: ["OPENBLAS_NUM_THREADS": "1"]), log))
        }
        say("round \(id): aggregator on 127.0.0.1:\(port), agents \(subset.joined(separator: ", ")); logs \(logs)")
        // Every agent exits once the aggregator acknowledged its last EVAL (EVALUATED), and the
        // aggregator (--once) once every EVAL is in: both exit on their own.
        while aggregator.isRunning {
            if Date().timeIntervalSince(started) > config.roundTimeout { throw FederationError.timedOut(round: id, seconds: config.roundTimeout, logs: logs) }
            for (name, p, log) in children where !p.isRunning && p.terminationStatus != 0 {
                throw failure("agent \(name) (round \(id))", p, log)
            }
            Thread.sleep(forTimeInterval: 2)
        }
        if aggregator.terminationStatus != 0 { throw failure("aggregator (round \(id))", aggregator, aggregatorLog) }
        for (name, p, log) in children {
            let waitStart = Date()
            while p.isRunning && Date().timeIntervalSince(waitStart) < 120 { Thread.sleep(forTimeInterval: 1) }
            if p.isRunning { p.terminate(); p.waitUntilExit() } else if p.terminationStatus != 0 { throw failure("agent \(name) (round \(id))", p, log) }
        }
        let roundDir = output + "/round-\(id)"
        return RoundOutput(id: id, subset: subset, agentEvalCap: agentEvalCap, directory: roundDir, evaluations: try Self.readEvaluations(roundDir + "/evals.json"),
                           mergeSeconds: try Self.readMergeSeconds(roundDir + "/report.json"),
                           wallSeconds: Date().timeIntervalSince(started))
    }

    static func readJSON(_ path: String) throws -> Any {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FederationError.processFailed(what: "the aggregator", status: 0, log: path, tail: "\(path) is missing")
        }
        return try JSONSerialization.jsonObject(with: data)
    }

    static func readEvaluations(_ path: String) throws -> [String: [String: [String: Double]]] {
        (try readJSON(path) as? [String: [String: [String: Double]]]) ?? [:]
    }

    static func readMergeSeconds(_ path: String) throws -> [String: Double] {
        let root = try readJSON(path) as? [String: Any]
        var out: [String: Double] = [:]
        for m in (root?["methods"] as? [[String: Any]]) ?? [] {
            if let label = m["label"] as? String, let s = m["seconds"] as? Double { out[label] = s }
        }
        return out
    }
}
