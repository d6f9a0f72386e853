// The agent daemon: joins the round, prepares its model and statistics (fine-tune or load,
// then the statistics the aggregator asked for), uploads them resumably, then receives each
// merged model, evaluates it on the local test split and reports EVAL. A thin state machine
// over Protocol (wire) and the local model work; heavy work runs on a worker thread so the
// link keeps its heartbeats.
//
// Phases (one `switch` each in `step`):
//   connecting → awaitingWelcome → preparing → uploading → awaitingMerged ⇄ receiving → done (`--once`)
//   … awaitingMerged → enrolled → (HELLO on the same link) awaitingWelcome → … (default: stays enrolled)
// Without `--once` the agent is a long-lived member: when every model of the merge it serves
// is settled it keeps the link and asks for the next merge (a repeated HELLO; the aggregator
// answers with a WELCOME for the first merge with work left for it), uploading only the
// files WELCOME's `required` lists and `committed` lacks for its contribution fingerprint.
// A broken link at any point goes back to connecting; everything durable is on disk
// (prepared model, the aggregator's spool, downloads, evals sent), so nothing is redone.
// `--connect-timeout` counts from the moment the link was lost (from the start before the
// first admission). The aggregator is trusted with the merged weights' values only: every
// value it chooses that becomes a path or a log line is checked (AggregatorValues) or
// escaped (`loggable`). A model the agent cannot evaluate is reported (ERROR eval_failed
// naming the method) and counts as settled; the run then ends with exit 1 naming it.

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
        /// Enrolled (no `--once`): every model of the served merge is settled; the link stays
        /// up (heartbeats) and at `nextHello` a HELLO on it asks for the next merge.
        case enrolled
        case done
    }

    /// A merged model on its way: its method, the file MERGED announced, the receiver.
    private struct Download {
        var method: String
        var headsPrefix: String
        var file: MergedFile
        var receiver: ChunkReceiver
    }

    public let config: AgentConfig
    private let work: LocalWork
    private var logger: Logger
    private var phase = Phase.connecting
    private var client: SecureClient?
    private var welcome: Welcome?
    private var fingerprint = ""
    /// The base model's weights file size: bounds what a MERGED may announce.
    private var baseModelBytes: UInt64 = 0
    private var lock: WorkdirLock?
    private let worker = WorkerThread()
    private var uploads: [String] = []
    /// Whether this WELCOME's preparation job was handed to the worker yet.
    private var prepareStarted = false
    private var sender: ChunkSender?
    private var download: Download?
    /// Merged weights received and waiting to be checked and assembled: (label, MERGED's heads prefix, file).
    private var received: [(label: String, headsPrefix: String, file: String)] = []
    /// Models waiting for the worker to evaluate them, one at a time: (label, model directory).
    private var pending: [(label: String, directory: String)] = []
    /// Evaluations made, and those the aggregator has acknowledged as durable (both
    /// persisted, so a restart neither re-evaluates nor forgets to re-send).
    private var sent: [String: [String: Double]] = [:]
    private var acknowledged: Set<String> = []
    /// Models this run could not evaluate, with why (not persisted: a restart tries again).
    private var failed: [String: String] = [:]
    private var connectAttempts = 0
    /// When the link to the aggregator was lost (the start counts: no link until the first WELCOME).
    private var linkDownSince: Date?
    /// Seconds to keep trying to (re)connect, counted from the loss of the link.
    public var connectTimeout: Double = 600
    /// `--once`: one merge, then exit (0 when every model was evaluated, 1 when one failed).
    /// Otherwise the agent stays enrolled: it keeps its link and evaluates every merge it is sent for.
    public var once = false
    /// Enrolled: seconds between HELLOs asking whether a next merge has work for this agent.
    public var enrolledHelloInterval: Double = 15
    private var nextHello = Date()
    /// Upload chunk size in bytes (the wire's maximum by default).
    public var chunkSize = 4 << 20
    /// Called with the running total of upload payload bytes after each chunk leaves. The
    /// daemon itself never acts on it; only the debug build's `--crash-after-bytes` (tests'
    /// fault injection) installs one, so no shipping path can end the process from here.
    public var uploadObserver: (@Sendable (Int) -> Void)?
    private var uploadedBytes = 0

    public init(config: AgentConfig, work: LocalWork, logger: Logger) {
        self.config = config
        self.work = work
        self.logger = logger
        self.logger[metadataKey: "agent"] = "\(config.name)"
    }

    var preparedDirectory: String { config.workdir + "/prepared" }
    func roundDirectory(_ round: Int) -> String { config.workdir + "/round-\(round)" }

    // MARK: start-up

    /// What must hold before the agent connects: the base model readable, the workdir
    /// writable, the TLS credentials loadable. Throws AgentStartError (its `exit` says which code).
    public func checkStartUp() throws {
        do {
            fingerprint = try ModelFingerprint.of(directory: config.baseModel)
            let weights = try FileManager.default.attributesOfItem(atPath: config.baseModel + "/model.safetensors")
            baseModelBytes = (weights[.size] as? NSNumber)?.uint64Value ?? 0
        } catch {
            throw AgentStartError.baseModel(config: config.file, path: config.baseModel, reason: AgentStartError.reason(error))
        }
        do {
            try FileManager.default.createDirectory(atPath: config.workdir, withIntermediateDirectories: true)
            let probe = config.workdir + "/.writable-\(getpid())"
            guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
                throw AgentStartError.workdir(config: config.file, path: config.workdir, reason: "cannot create a file in it")
            }
            try? FileManager.default.removeItem(atPath: probe)
        } catch let error as AgentStartError {
            throw error
        } catch {
            throw AgentStartError.workdir(config: config.file, path: config.workdir, reason: AgentStartError.reason(error))
        }
        try makeClient().close()
    }

    /// A new link to the aggregator; the one place where TLS credential errors (whatever the
    /// TLS layer throws while loading them) become `.tlsCredentials` (exit 4).
    private func makeClient() throws -> SecureClient {
        do {
            return try SecureClient(endpoint: config.aggregator, tls: config.tls, serverName: config.serverName, logger: logger)
        } catch {
            throw AgentStartError.tlsCredentials(config: config.file, reason: "\(error)")
        }
    }

    public func run() throws -> DaemonExit {
        try checkStartUp()
        lock = try WorkdirLock(workdir: config.workdir, config: config.file)
        linkDownSince = Date()
        while true {
            if let signo = StopSignal.requested {
                logger.notice("stopping on signal \(signo); run again to resume")
                client?.close()
                return .interrupted
            }
            do {
                switch try step() {
                // The last EVAL, ERROR or COMMITTED must leave before the process does.
                case .some(let exit): client?.close(grace: 0.5); return exit
                case .none: continue
                }
            } catch let failure as LinkFailure {
                client?.close()
                client = nil
                sender = nil
                download = nil
                let reason = loggable("\(failure)")
                if case .refusedByServer = failure {
                    logger.error("the aggregator refused this agent's certificate: \(reason)")
                    return .refused
                }
                if case .handshake = failure {
                    logger.error("TLS handshake failed: \(reason)")
                    return .refused
                }
                let since = linkDownSince ?? Date()
                linkDownSince = since      // the first failure since the last admission starts the clock
                guard Date().timeIntervalSince(since) < connectTimeout else {
                    logger.error("giving up: no link to the aggregator for \(Int(Date().timeIntervalSince(since))) s (--connect-timeout \(Int(connectTimeout))): \(reason)")
                    return .failure
                }
                connectAttempts += 1
                let wait = min(5.0, 0.2 * Double(connectAttempts))
                logger.warning("link lost (\(reason)); reconnecting in \(String(format: "%.1f", wait)) s")
                Thread.sleep(forTimeInterval: wait)
                phase = .connecting
            }
        }
    }

    /// One turn of the state machine; a non-nil result ends the run.
    private func step() throws -> DaemonExit? {
        switch phase {
        case .connecting:
            let client = try makeClient()
            self.client = client
            try client.connect(timeout: 10)
            try sendHello()
            phase = .awaitingWelcome
        case .awaitingWelcome:
            guard let message = try client!.receive(timeout: 30) else { throw LinkFailure.heartbeatTimeout(seconds: 30) }
            switch message {
            case .welcome(let w):
                do { try AggregatorValues.check(w) } catch let refusal as AggregatorValueError {
                    logger.error("refusing the aggregator's WELCOME: \(refusal)")
                    try? client!.send(.error(ErrorReport(code: "welcome_refused", message: refusal.description)))
                    return .failure
                }
                let saved = loadSentEvaluations(round: w.round)
                let plan = WelcomePlan.plan(w, servedRound: welcome?.round, sent: saved.0, acknowledged: saved.1,
                                            failed: Set(failed.keys), once: once)
                if plan.newRound {
                    failed = [:]
                    pending = []
                    received = []
                    download = nil
                    logger.info("next merge", metadata: ["round": "\(w.round)", "merge": "\(loggable(w.merge))"])
                }
                welcome = w
                connectAttempts = 0
                linkDownSince = nil
                (sent, acknowledged) = saved
                // EVALs whose acknowledgement a broken link swallowed go again (the aggregator is idempotent).
                for eval in plan.resend { try client!.send(.eval(eval)) }
                logger.info("admitted", metadata: ["round": "\(w.round)", "statistics": "\(w.wantedStatistics.map(\.rawValue).joined(separator: ","))",
                                                   "methods": "\(w.methods.map { loggable($0) }.joined(separator: ","))", "phase": "\(w.phase.rawValue)"])
                switch plan.next {
                case .finish:
                    return finishRound()
                case .stayEnrolled:
                    // Nothing new on this merge: keep the link and ask again later.
                    phase = .enrolled
                    nextHello = Date().addingTimeInterval(enrolledHelloInterval)
                    return nil
                case .prepare:
                    break
                }
                uploads = plan.uploads
                // Always prepare: it reuses the model and statistics on disk when their inputs match,
                // and the local evaluation needs them even when the aggregator has everything.
                phase = .preparing
                prepareStarted = false
            case .refused(let r):
                logger.error("refused by the aggregator: \(loggable(r.reason))")
                return .refused
            case .heartbeat:
                break
            default:
                logger.warning("ignoring \(message.type) before WELCOME")
            }
        case .preparing:
            _ = try receiveMerged(timeout: 0.2)        // keeps the link alive
            if !prepareStarted {
                // An evaluation that was running when the link broke finishes first and is
                // reported; only then may the worker prepare (one job at a time, results never mixed).
                if let leftover = worker.take() { try deliver(leftover) }
                guard !worker.isBusy else { return nil }
                let work = self.work, statistics = welcome!.wantedStatistics.map(\.rawValue), directory = preparedDirectory, logger = self.logger
                worker.start { try work.prepare(statistics: statistics, into: directory, logger: logger) }
                prepareStarted = true
                return nil
            }
            guard let result = worker.take() else { return nil }
            if case .failure(_, let error) = result {
                logger.error("preparing the model failed: \(error)")
                try? client?.send(.error(ErrorReport(code: "prepare_failed", message: error)))
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
            try assembleReceived()
            if !worker.isBusy, !pending.isEmpty {
                let (label, directory) = pending.removeFirst()
                let work = self.work, logger = self.logger
                worker.start(label: label) { try work.evaluate(modelDirectory: directory, logger: logger) }
            }
            if !worker.isBusy, pending.isEmpty, received.isEmpty, allSettled(welcome!) {
                let exit = finishRound()
                if once { return exit }
                phase = .enrolled               // ask for the next merge right away
                nextHello = Date()
            }
        case .enrolled:
            _ = try receiveMerged(timeout: 0.5)        // heartbeats, late EVALUATED
            // The aggregator delivers a model again (e.g. one whose evaluation failed): evaluate it.
            if download != nil || !received.isEmpty { phase = .awaitingMerged; return nil }
            guard Date() >= nextHello else { return nil }
            try sendHello()
            phase = .awaitingWelcome
        case .done:
            return .success
        }
        return nil
    }

    /// HELLO: the first message on a link, and (enrolled) the request for the next merge.
    private func sendHello() throws {
        try client!.send(.hello(Hello(name: config.name, baseFingerprint: fingerprint, contribution: try work.contributionFingerprint())))
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
        if case .chunk(_, let payload) = message, let observer = uploadObserver {
            uploadedBytes += payload.count
            observer(uploadedBytes)
        }
    }

    // MARK: merged models and evaluations

    /// Handles one message while waiting for merged models; false when none came.
    private func receiveMerged(timeout: Double) throws -> Bool {
        guard let message = try client!.receive(timeout: timeout) else { return false }
        try handleIncoming(message)
        return true
    }

    /// Merged-model announcements and their chunks, heartbeats and error reports. A message
    /// that fails the checks is refused with an ERROR naming the value and touches no disk.
    private func handleIncoming(_ message: Message) throws {
        switch message {
        case .merged(let merged):
            download = nil
            let file: MergedFile
            do { file = try AggregatorValues.check(merged, welcome: welcome, ownModelBytes: baseModelBytes) } catch let refusal as AggregatorValueError {
                try refuse(refusal)
                return
            }
            let receiver = try ChunkReceiver(spool: roundDirectory(merged.round) + "/downloads", maxFileSize: file.size, logger: logger)
            download = Download(method: merged.method, headsPrefix: merged.headsPrefix, file: file, receiver: receiver)
            failed[merged.method] = nil     // delivered again: try again
            logger.info("merged model announced", metadata: ["method": "\(merged.method)", "bytes": "\(file.size)"])
        case .offer, .chunk, .commit:
            guard let download else { try refuse(.noDownload(message.type)); return }
            if case .offer(let offer) = message,
               offer.name != download.file.name || offer.size != download.file.size || offer.sha256 != download.file.sha256 {
                try refuse(.offerMismatch(name: offer.name, announced: download.file.name))
                return
            }
            let outcome: ChunkReceiver.Outcome
            do { outcome = try download.receiver.handle(message) } catch let error as TransferError {
                logger.warning("merged model transfer refused: \(loggable(error.description))")
                try client!.send(error.report)
                return
            }
            for reply in outcome.replies { try client!.send(reply) }
            if let file = outcome.completed {
                logger.info("merged model received", metadata: ["method": "\(download.method)", "bytes": "\(file.size)", "sha256": "\(file.sha256.prefix(12))"])
                self.download = nil
                received.append((download.method, download.headsPrefix, file.path))
            }
        case .evaluated(let ack):
            guard let welcome, ack.round == welcome.round, sent[ack.method] != nil else {
                logger.warning("ignoring EVALUATED for a model this agent did not report", metadata: ["round": "\(ack.round)", "method": "\(loggable(ack.method))"])
                return
            }
            acknowledged.insert(ack.method)
            try saveSentEvaluations(round: welcome.round)
        case .heartbeat:
            break
        case .error(let report):
            logger.warning("aggregator reported an error: \(loggable(report.code)): \(loggable(report.message))")
        default:
            logger.warning("ignoring an unexpected \(message.type)")
        }
    }

    /// Tells the aggregator (and the log) why a message was refused.
    private func refuse(_ refusal: AggregatorValueError) throws {
        logger.error("\(refusal)")
        try client!.send(.error(ErrorReport(code: "merged_refused", message: refusal.description)))
    }

    /// Checks each received merged weights file against this agent's model and builds its
    /// model directory; one that does not fit counts as a failed evaluation of its method.
    private func assembleReceived() throws {
        guard let welcome else { return }
        while !received.isEmpty {
            let (label, headsPrefix, file) = received.removeFirst()
            do {
                try MergedDownload.assemble(weights: file, localModel: preparedDirectory, agentName: config.name, headsPrefix: headsPrefix,
                                            mergedRoot: roundDirectory(welcome.round) + "/merged", label: label)
                pending.append((label, roundDirectory(welcome.round) + "/merged/" + label))
            } catch {
                try fail(label, because: "the merged model cannot be used: \(error)")
            }
        }
    }

    private func reportLocalEvaluation(_ welcome: Welcome) throws {
        let local = ReservedLabel.local
        if sent[local] == nil && failed[local] == nil && !pending.contains(where: { $0.label == local }) {
            pending.append((local, preparedDirectory))
        }
    }

    private func deliver(_ result: WorkerThread.Result) throws {
        switch result {
        case .success(let label, let metrics):
            guard let label, let welcome else { return }
            if let bad = metrics.keys.sorted().first(where: { !metrics[$0]!.isFinite }) {
                try fail(label, because: "the metric '\(bad)' is \(metrics[bad]!)")
                return
            }
            sent[label] = metrics
            try saveSentEvaluations(round: welcome.round)
            try client!.send(.eval(Eval(round: welcome.round, method: label, metrics: metrics)))
            logger.info("evaluated", metadata: ["model": "\(label)", "metrics": "\(metrics.keys.sorted().map { "\($0)=\(String(format: "%.4f", metrics[$0]!))" }.joined(separator: " "))"])
        case .failure(let label, let error):
            try fail(label ?? "?", because: error)
        }
    }

    /// A model this agent cannot evaluate: reported once (ERROR eval_failed naming it) and
    /// settled, so the agent does not wait for an acknowledgement that will never come.
    private func fail(_ label: String, because reason: String) throws {
        failed[label] = reason
        logger.error("evaluation of '\(label)' failed: \(loggable(reason, limit: 1000))")
        try client!.send(.error(ErrorReport(code: "eval_failed", message: reason, method: label)))
    }

    /// Every model evaluated and acknowledged by the aggregator, or failed.
    private func allSettled(_ welcome: Welcome) -> Bool {
        WelcomePlan.allSettled(methods: welcome.methods, acknowledged: acknowledged, failed: Set(failed.keys))
    }

    /// Logs how the served merge ended; with `--once` that ends the run (phase done).
    private func finishRound() -> DaemonExit {
        if once { phase = .done }
        guard failed.isEmpty else {
            for (label, reason) in failed.sorted(by: { $0.key < $1.key }) {
                logger.error("round ended with a failed evaluation of '\(label)': \(loggable(reason, limit: 1000))")
            }
            logger.error("round complete, but \(failed.count) evaluation(s) failed: \(failed.keys.sorted().joined(separator: ", "))",
                         metadata: ["round": "\(welcome?.round ?? -1)"])
            return .failure
        }
        logger.info("round complete: every merged model evaluated", metadata: ["round": "\(welcome?.round ?? -1)"])
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

/// One background job at a time (preparing or evaluating), polled by the daemon loop.
final class WorkerThread: @unchecked Sendable {
    enum Result { case success(label: String?, metrics: [String: Double]), failure(label: String?, reason: String) }
    private let lock = NSLock()
    private var result: Result?
    private var busy = false

    /// Running, or finished with a result nobody took yet: a new job must wait, or its start
    /// would overwrite that result (a job finishing between `take()` and `start` was lost so,
    /// and the agent waited forever for the EVAL it never sent).
    var isBusy: Bool { lock.lock(); defer { lock.unlock() }; return busy || result != nil }

    func start(_ job: @escaping @Sendable () throws -> Void) {
        start(label: nil) { try job(); return [:] }
    }

    func start(label: String?, _ job: @escaping @Sendable () throws -> [String: Double]) {
        lock.lock(); busy = true; result = nil; lock.unlock()
        Thread.detachNewThread { [self] in
            let r: Result
            do { r = .success(label: label, metrics: try job()) } catch { r = .failure(label: label, reason: "\(error)") }
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
