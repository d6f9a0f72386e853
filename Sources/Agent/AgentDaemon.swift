// The agent daemon: joins the round, prepares its model and statistics (fine-tune or load,
// then the statistics the aggregator asked for), uploads them resumably, then receives each
// merged model, evaluates it on the local test split and reports EVAL. A thin state machine
// over Protocol (wire) and the local model work; heavy work runs on a worker thread so the
// link keeps its heartbeats.
//
// Phases (one `switch` each in `step`):
//   connecting → awaitingWelcome → preparing → uploading → awaitingMerged ⇄ receiving → done
// A broken link at any point goes back to connecting; everything durable is on disk
// (prepared model, the aggregator's spool, downloads, evals sent), so nothing is redone.

import AtomicIO
import DaemonSupport
import Foundation
import Logging
import Protocol
import SafeTensors

/// What the agent does with its own model; the daemon only moves files and messages.
public protocol LocalWork: Sendable {
    /// Writes `directory`/{config.json, model.safetensors} and, when `statistics` is not empty,
    /// `directory`/stats.safetensors with those statistics. Reuses earlier work when its inputs match.
    func prepare(statistics: [String], into directory: String, logger: Logger) throws
    /// Scores the model directory on the local test split ("accuracy", "macro_f1", …).
    func evaluate(modelDirectory: String, logger: Logger) throws -> [String: Double]
    /// SHA-256 of everything the contribution depends on (HELLO's `contribution`), or nil.
    func contributionFingerprint() throws -> String?
}

extension LocalWork {
    public func contributionFingerprint() throws -> String? { nil }
}

public final class AgentDaemon: @unchecked Sendable {
    enum Phase {
        case connecting
        case awaitingWelcome
        case preparing
        case uploading
        case awaitingMerged
        case done
    }

    public let config: AgentConfig
    private let work: LocalWork
    private var logger: Logger
    private var phase = Phase.connecting
    private var client: SecureClient?
    private var welcome: Welcome?
    private var fingerprint = ""
    private let worker = WorkerThread()
    private var uploads: [String] = []
    private var sender: ChunkSender?
    private var receiver: ChunkReceiver?
    /// The method whose merged model is arriving (from MERGED).
    private var arriving: String?
    /// Models waiting for the worker to evaluate them, one at a time: (label, model directory).
    private var pending: [(label: String, directory: String)] = []
    /// Evaluations made, and those the aggregator has acknowledged as durable (both
    /// persisted, so a restart neither re-evaluates nor forgets to re-send).
    private var sent: [String: [String: Double]] = [:]
    private var acknowledged: Set<String> = []
    private var connectAttempts = 0
    public var connectTimeout: Double = 600
    /// Upload chunk size in bytes (the wire's maximum by default).
    public var chunkSize = 4 << 20
    /// Fault injection for tests: exit abruptly (status 99) once this many upload bytes were sent.
    public var crashAfterBytes: Int?
    private var uploadedBytes = 0

    public init(config: AgentConfig, work: LocalWork, logger: Logger) {
        self.config = config
        self.work = work
        self.logger = logger
        self.logger[metadataKey: "agent"] = "\(config.name)"
    }

    var preparedDirectory: String { config.workdir + "/prepared" }
    func roundDirectory(_ round: Int) -> String { config.workdir + "/round-\(round)" }

    public func run() throws -> DaemonExit {
        fingerprint = try ModelFingerprint.of(directory: config.baseModel)
        try FileManager.default.createDirectory(atPath: config.workdir, withIntermediateDirectories: true)
        let firstTry = Date()
        while true {
            if let signo = StopSignal.requested {
                logger.notice("stopping on signal \(signo); run again to resume")
                client?.close()
                return .interrupted
            }
            do {
                switch try step() {
                case .some(let exit): client?.close(); return exit
                case .none: continue
                }
            } catch let failure as LinkFailure {
                client?.close()
                client = nil
                sender = nil
                if case .refusedByServer = failure {
                    logger.error("the aggregator refused this agent's certificate: \(failure)")
                    return .refused
                }
                if case .handshake = failure {
                    logger.error("TLS handshake failed: \(failure)")
                    return .refused
                }
                guard Date().timeIntervalSince(firstTry) < connectTimeout else {
                    logger.error("giving up after \(Int(connectTimeout)) s: \(failure)")
                    return .failure
                }
                connectAttempts += 1
                let wait = min(5.0, 0.2 * Double(connectAttempts))
                logger.warning("link lost (\(failure)); reconnecting in \(String(format: "%.1f", wait)) s")
                Thread.sleep(forTimeInterval: wait)
                phase = .connecting
            }
        }
    }

    /// One turn of the state machine; a non-nil result ends the run.
    private func step() throws -> DaemonExit? {
        switch phase {
        case .connecting:
            let client = try SecureClient(endpoint: config.aggregator, tls: config.tls, serverName: config.serverName, logger: logger)
            self.client = client
            try client.connect(timeout: 10)
            try client.send(.hello(Hello(name: config.name, baseFingerprint: fingerprint, contribution: try work.contributionFingerprint())))
            phase = .awaitingWelcome
        case .awaitingWelcome:
            guard let message = try client!.receive(timeout: 30) else { throw LinkFailure.heartbeatTimeout(seconds: 30) }
            switch message {
            case .welcome(let w):
                welcome = w
                connectAttempts = 0
                (sent, acknowledged) = loadSentEvaluations(round: w.round)
                // EVALs whose acknowledgement a broken link swallowed go again (the aggregator is idempotent).
                for (label, metrics) in sent.sorted(by: { $0.key < $1.key }) where !acknowledged.contains(label) {
                    try client!.send(.eval(Eval(round: w.round, method: label, metrics: metrics)))
                }
                logger.info("admitted", metadata: ["round": "\(w.round)", "statistics": "\(w.wantedStatistics.map(\.rawValue).joined(separator: ","))",
                                                   "methods": "\(w.methods.joined(separator: ","))", "phase": "\(w.phase.rawValue)"])
                if allEvaluated(w) { return finishRound() }
                uploads = w.required.filter { !w.committed.contains($0) }
                // Always prepare: it reuses the model and statistics on disk when their inputs match,
                // and the local evaluation needs them even when the aggregator has everything.
                phase = .preparing
                let work = self.work, statistics = w.wantedStatistics.map(\.rawValue), directory = preparedDirectory, logger = self.logger
                worker.start { try work.prepare(statistics: statistics, into: directory, logger: logger) }
            case .refused(let r):
                logger.error("refused by the aggregator: \(r.reason)")
                return .refused
            case .heartbeat:
                break
            default:
                logger.warning("ignoring \(message.type) before WELCOME")
            }
        case .preparing:
            _ = try receiveMerged(timeout: 0.2)        // keeps the link alive
            guard let result = worker.take() else { return nil }
            if case .failure(let error) = result {
                logger.error("preparing the model failed: \(error)")
                try? client?.send(.error(ErrorReport(code: "prepare_failed", message: "\(error)")))
                return .failure
            }
            if uploads.isEmpty {
                phase = .awaitingMerged
                try reportLocalEvaluation(welcome!)
                return nil
            }
            phase = .uploading
            try startNextUpload()
        case .uploading:
            guard let message = try client!.receive(timeout: 1) else { return nil }
            guard let sender, try sender.handle(message, send: sendUpload) else {
                try handleIncoming(message)     // e.g. a merged model of a round that went on without us
                return nil
            }
            if sender.isCommitted {
                logger.info("uploaded", metadata: ["file": "\(sender.offer.name)", "bytes": "\(sender.offer.size)"])
                uploads.removeFirst()
                self.sender = nil
                if uploads.isEmpty {
                    phase = .awaitingMerged
                    try reportLocalEvaluation(welcome!)
                } else {
                    try startNextUpload()
                }
            }
        case .awaitingMerged:
            _ = try receiveMerged(timeout: 0.5)
            if let result = worker.take() { try deliver(result) }
            if !worker.isBusy, !pending.isEmpty {
                let (label, directory) = pending.removeFirst()
                let work = self.work, logger = self.logger
                worker.start(label: label) { try work.evaluate(modelDirectory: directory, logger: logger) }
            }
            if !worker.isBusy, pending.isEmpty, allEvaluated(welcome!) { return finishRound() }
        case .done:
            return .success
        }
        return nil
    }

    private func startNextUpload() throws {
        let name = uploads[0]
        let sender = try ChunkSender(path: preparedDirectory + "/" + name, name: name, chunkSize: chunkSize)
        self.sender = sender
        logger.info("uploading", metadata: ["file": "\(name)", "bytes": "\(sender.offer.size)"])
        try sender.start(send: sendUpload)
    }

    private func sendUpload(_ message: Message) throws {
        try client!.send(message)
        if case .chunk(_, let payload) = message, let limit = crashAfterBytes {
            uploadedBytes += payload.count
            if uploadedBytes >= limit {
                logger.critical("fault injection: exiting after \(uploadedBytes) upload bytes")
                _exit(99)
            }
        }
    }

    // MARK: merged models and evaluations

    /// Handles one message while waiting for merged models; false when none came.
    private func receiveMerged(timeout: Double) throws -> Bool {
        guard let message = try client!.receive(timeout: timeout) else { return false }
        try handleIncoming(message)
        return true
    }

    /// Merged-model announcements and their chunks, heartbeats and error reports.
    private func handleIncoming(_ message: Message) throws {
        switch message {
        case .merged(let merged):
            arriving = merged.method
            let directory = roundDirectory(merged.round) + "/downloads"
            receiver = try ChunkReceiver(spool: directory, logger: logger)
            logger.info("merged model announced", metadata: ["method": "\(merged.method)", "bytes": "\(merged.files.first?.size ?? 0)"])
        case .offer, .chunk, .commit:
            guard let receiver else { throw AgentError.unexpected(message.type.description) }
            let outcome = try receiver.handle(message)
            for reply in outcome.replies { try client!.send(reply) }
            if let file = outcome.completed, let method = arriving {
                logger.info("merged model received", metadata: ["method": "\(method)", "bytes": "\(file.size)", "sha256": "\(file.sha256.prefix(12))"])
                arriving = nil
                try evaluateMerged(method: method, file: file.path)
            }
        case .evaluated(let ack):
            acknowledged.insert(ack.method)
            if let welcome { try saveSentEvaluations(round: welcome.round) }
        case .heartbeat:
            break
        case .error(let report):
            logger.warning("aggregator reported an error: \(report.code): \(report.message)")
        default:
            logger.warning("ignoring an unexpected \(message.type)")
        }
    }

    /// Builds a model directory around a received merged weights file and queues its evaluation.
    private func evaluateMerged(method: String, file: String) throws {
        guard let welcome else { return }
        let directory = roundDirectory(welcome.round) + "/merged/" + method
        try MergedDownload.assemble(weights: file, localModel: preparedDirectory, agentName: config.name, into: directory)
        pending.append((method, directory))
    }

    private func reportLocalEvaluation(_ welcome: Welcome) throws {
        if sent["local"] == nil && !pending.contains(where: { $0.label == "local" }) {
            pending.append(("local", preparedDirectory))
        }
    }

    private func deliver(_ result: WorkerThread.Result) throws {
        switch result {
        case .success(let label, let metrics):
            guard let label, let welcome else { return }
            sent[label] = metrics
            try saveSentEvaluations(round: welcome.round)
            try client!.send(.eval(Eval(round: welcome.round, method: label, metrics: metrics)))
            logger.info("evaluated", metadata: ["model": "\(label)", "metrics": "\(metrics.keys.sorted().map { "\($0)=\(String(format: "%.4f", metrics[$0]!))" }.joined(separator: " "))"])
        case .failure(let error):
            logger.error("evaluation failed: \(error)")
            try client!.send(.error(ErrorReport(code: "eval_failed", message: "\(error)")))
        }
    }

    /// Every model evaluated and every EVAL acknowledged by the aggregator.
    private func allEvaluated(_ welcome: Welcome) -> Bool {
        (["local"] + welcome.methods).allSatisfy { acknowledged.contains($0) }
    }

    private func finishRound() -> DaemonExit {
        logger.info("round complete: every merged model evaluated", metadata: ["round": "\(welcome?.round ?? -1)"])
        phase = .done
        return .success
    }

    private func sentPath(_ round: Int) -> String { roundDirectory(round) + "/evals-sent.json" }

    private struct SentEvaluations: Codable {
        var metrics: [String: [String: Double]]
        var acknowledged: [String]
    }

    private func loadSentEvaluations(round: Int) -> ([String: [String: Double]], Set<String>) {
        guard let data = FileManager.default.contents(atPath: sentPath(round)),
              let saved = try? JSONDecoder().decode(SentEvaluations.self, from: data) else { return ([:], []) }
        return (saved.metrics, Set(saved.acknowledged))
    }

    private func saveSentEvaluations(round: Int) throws {
        try FileManager.default.createDirectory(atPath: roundDirectory(round), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(SentEvaluations(metrics: sent, acknowledged: acknowledged.sorted())), to: sentPath(round))
    }
}

public enum AgentError: Error, CustomStringConvertible {
    case unexpected(String)
    public var description: String {
        switch self {
        case .unexpected(let type): return "the aggregator sent an unexpected \(type)"
        }
    }
}

/// One background job at a time (preparing or evaluating), polled by the daemon loop.
final class WorkerThread: @unchecked Sendable {
    enum Result { case success(label: String?, metrics: [String: Double]), failure(String) }
    private let lock = NSLock()
    private var result: Result?
    private var busy = false

    var isBusy: Bool { lock.lock(); defer { lock.unlock() }; return busy }

    func start(_ job: @escaping @Sendable () throws -> Void) {
        start(label: nil) { try job(); return [:] }
    }

    func start(label: String?, _ job: @escaping @Sendable () throws -> [String: Double]) {
        lock.lock(); busy = true; result = nil; lock.unlock()
        Thread.detachNewThread { [self] in
            let r: Result
            do { r = .success(label: label, metrics: try job()) } catch { r = .failure("\(error)") }
            lock.lock(); result = r; busy = false; lock.unlock()
        }
    }

    func take() -> Result? {
        lock.lock(); defer { lock.unlock() }
        guard !busy, let r = result else { return nil }
        result = nil
        return r
    }
}
