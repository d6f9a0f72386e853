// The agent daemon's shell: it owns the link to the aggregator, the worker thread (fine-tuning,
// statistics, evaluation), the upload's ChunkSender, the download's ChunkReceiver and the
// work directory. It turns what happens into AgentEvents for the pure transition `step`
// (AgentTransition.swift; the states are described in AgentState.swift) and carries out the
// AgentEffects, in order. It decides nothing about the round itself.
//
// Everything durable is on disk (prepared model, the aggregator's store, downloads, EVALs
// made and acknowledged), so a restarted agent redoes nothing. The aggregator is trusted with
// the merged weights' values only: every value it chooses that becomes a path or a log line
// is checked (AggregatorValues, in `step`) or escaped (`loggable`).

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
    public let config: AgentConfig
    private let work: LocalWork
    private var logger: Logger
    private var fingerprint = ""
    /// The base model's weights file size: bounds what a MERGED may announce.
    private var baseModelBytes: UInt64 = 0
    private var lock: WorkdirLock?
    private let worker = WorkerThread()
    private var client: SecureClient?
    /// When the `connect` effect asked for the next link attempt (monotonic seconds).
    private var connectAt: Double?
    private var sender: ChunkSender?
    private var receiver: ChunkReceiver?
    private var events: [AgentEvent] = []
    /// Merge name of each merge id this run was WELCOMEd to: stamped into evals-sent.json.
    private var mergeNames: [Int: String] = [:]
    /// Seconds to keep trying to (re)connect with `--once`, counted from the loss of the link.
    public var connectTimeout: Double = 600
    /// `--once`: one merge, then exit (0 when every model was evaluated, 1 when one failed).
    /// Otherwise the agent stays enrolled: it keeps (or regains) its link and evaluates every
    /// merge it is sent for, retrying with ReconnectBackoff for as long as it runs.
    public var once = false
    /// Enrolled: seconds between HELLOs asking whether a next merge has work for this agent.
    public var enrolledHelloInterval: Double = 15
    /// Upload chunk size in bytes (the wire's maximum by default).
    public var chunkSize = 4 << 20
    /// Called with the running total of upload payload bytes after each chunk leaves. The
    /// daemon itself never acts on it; only the debug build's `--crash-after-bytes` (tests'
    /// fault injection) installs one, so no shipping path can end the process from here.
    public var uploadObserver: (@Sendable (Int) -> Void)?
    private var uploadedBytes = 0
    /// The secure merge being run (its key pair, seeds and summands never leave this object).
    private var secure: SecureExchange?

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

    // MARK: the loop

    /// Seconds on a clock that never jumps (the transition's `now`).
    private static func clock() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// Whether a job (fine-tuning, statistics, scoring) is still running on the worker thread:
    /// the process must then end without tearing down its libraries (AgentCommand), since
    /// OpenBLAS's exit handlers under a running GEMM crash the process.
    public var hasRunningJob: Bool { worker.isRunning }

    public func run() throws -> DaemonExit {
        try checkStartUp()
        lock = try WorkdirLock(workdir: config.workdir, config: config.file)
        let settings = AgentSettings(once: once, connectTimeout: connectTimeout, helloInterval: enrolledHelloInterval, baseModelBytes: baseModelBytes)
        var state = AgentState.starting(AgentMemory(settings: settings))
        events = [.tick(now: Self.clock()), .started]
        while true {
            if let signo = StopSignal.requested {
                logger.notice("stopping on signal \(signo); run again to resume")
                client?.close()
                return .interrupted
            }
            while !events.isEmpty {
                let (next, effects) = step(state, events.removeFirst())
                state = next
                try perform(effects)
            }
            if case .finished(let exit) = state {
                // The last EVAL, ERROR or COMMITTED must leave before the process does.
                client?.close(grace: 0.5)
                return exit
            }
            try waitForInput()
            events.insert(.tick(now: Self.clock()), at: 0)
        }
    }

    /// Waits a little for one thing to happen: a worker result, a message, the next link attempt.
    private func waitForInput() throws {
        if let result = worker.take() {
            events.append(result)
        } else if let client {
            do {
                if let message = try client.receive(timeout: 0.2) { events.append(event(for: message)) }
            } catch let failure as LinkFailure {
                linkFailed(failure)
            }
        } else if let at = connectAt, Self.clock() >= at {
            connectAt = nil
            let client = try makeClient()
            self.client = client
            do {
                try client.connect(timeout: 10)
                events.append(.linkUp)
            } catch let failure as LinkFailure {
                linkFailed(failure)
            }
        } else {
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// WELCOME goes to `step` with the EVALs this agent saved for its round.
    private func event(for message: Message) -> AgentEvent {
        if case .welcome(let welcome) = message {
            mergeNames[welcome.round] = welcome.merge
            return .welcome(welcome, saved: loadSentEvaluations(round: welcome.round, merge: welcome.merge))
        }
        return .message(message)
    }

    /// The link is gone: close it, end its transfers, and tell `step` (once).
    private func linkFailed(_ failure: LinkFailure) {
        client?.close()
        client = nil
        sender = nil
        receiver = nil
        let reason = loggable("\(failure)")
        switch failure {
        case .refusedByServer: events.append(.linkRefused(reason: "the aggregator refused this agent's certificate: \(reason)"))
        case .handshake: events.append(.linkRefused(reason: "TLS handshake failed: \(reason)"))
        default: events.append(.linkLost(reason: reason))
        }
    }

    // MARK: effects

    private func perform(_ effects: [AgentEffect]) throws {
        for effect in effects {
            switch effect {
            case .connect(let after):
                connectAt = Self.clock() + after
            case .sendHello:
                let contribution: String?
                do { contribution = try work.contributionFingerprint() } catch {
                    events.append(.localFailure(reason: "cannot compute the contribution fingerprint: \(error)"))
                    continue
                }
                send(.hello(Hello(name: config.name, baseFingerprint: fingerprint, contribution: contribution)))
            case .send(let message):
                send(message)
            case .endMerge:
                secure = nil
                sender = nil
            case .dropLink:
                client?.close()
                client = nil
                sender = nil
                receiver = nil
            case .prepare(let statistics):
                let work = self.work, names = statistics.map(\.rawValue), directory = preparedDirectory, logger = self.logger
                worker.start {
                    do { try work.prepare(statistics: names, into: directory, logger: logger); return .prepared } catch {
                        return .prepareFailed(reason: "\(error)")
                    }
                }
            case .startUpload(let file):
                startUpload(file)
            case .feedUpload(let message):
                feedUpload(message)
            case .openDownload(let round, let file):
                do {
                    receiver = try ChunkReceiver(spool: roundDirectory(round) + "/downloads", maxFileSize: file.size, logger: logger)
                } catch {
                    events.append(.localFailure(reason: "cannot receive a merged model into \(roundDirectory(round))/downloads: \(error)"))
                }
            case .feedDownload(let message):
                feedDownload(message)
            case .evaluate(let round, let job):
                evaluate(round: round, job)
            case .secureBegin(let round, let merge, let plan):
                do {
                    let exchange = try SecureExchange(agent: config.name, round: round, merge: merge, plan: plan, tls: config.tls)
                    secure = exchange
                    send(.secureKey(try exchange.signedKey()))
                } catch {
                    events.append(.secureFailed(reason: "cannot make this agent's secure-sum key: \(error)"))
                }
            case .secureKeys(let keys):
                guard let exchange = secure else { events.append(.secureFailed(reason: "SECURE_KEYS before this agent sent its key")); continue }
                logger.info("secure merge: verifying the relayed keys and computing the summands", metadata: ["members": "\(keys.keys.map { loggable($0.agent) }.joined(separator: ","))"])
                let directory = preparedDirectory
                worker.start {
                    do { return .secureBoundsReady(try exchange.keysReceived(keys, preparedDirectory: directory)) } catch {
                        return .secureFailed(reason: "\(error)")
                    }
                }
            case .secureReveal(let request):
                guard let exchange = secure else {
                    send(.error(ErrorReport(code: "reveal_refused", message: "this agent runs no secure merge")))
                    continue
                }
                do { send(.reveal(try exchange.reveal(request))) } catch {
                    logger.error("refusing to reveal seeds: \(loggable("\(error)", limit: 400))")
                    send(.error(ErrorReport(code: "reveal_refused", message: "\(error)")))
                }
            case .secureScale(let scale):
                guard let exchange = secure else { events.append(.secureFailed(reason: "SECURE_SCALE before SECURE_KEYS")); continue }
                let directory = preparedDirectory
                worker.start {
                    do {
                        let (file, bytes) = try exchange.scaleReceived(scale, preparedDirectory: directory)
                        return .secureMasked(file: file, bytes: bytes)
                    } catch {
                        return .secureFailed(reason: "\(error)")
                    }
                }
            case .saveEvaluations(let round, let evaluations):
                do { try saveSentEvaluations(evaluations, round: round) } catch {
                    events.append(.localFailure(reason: "cannot save \(sentPath(round)): \(error)"))
                }
            case .log(let line):
                logger.log(level: line.level, "\(line.message)", metadata: line.metadata.mapValues { .string($0) })
            }
        }
    }

    /// Sends on the link; without one (it failed earlier in this step) the message is dropped:
    /// `step` learns of the loss and re-sends what matters after the next WELCOME.
    private func send(_ message: Message) {
        guard let client else { return }
        do { try client.send(message) } catch let failure as LinkFailure {
            linkFailed(failure)
        } catch {
            linkFailed(.record(.recordFailed("\(error)")))
        }
    }

    private func sendUpload(_ message: Message) throws {
        guard let client else { throw LinkFailure.notConnected }
        try client.send(message)
        if case .chunk(_, let payload) = message, let observer = uploadObserver {
            uploadedBytes += payload.count
            observer(uploadedBytes)
        }
    }

    private func startUpload(_ name: String) {
        do {
            let sender = try ChunkSender(path: preparedDirectory + "/" + name, name: name, chunkSize: chunkSize)
            self.sender = sender
            logger.info("uploading", metadata: ["file": "\(name)", "bytes": "\(sender.offer.size)"])
            try sender.start(send: sendUpload)
        } catch let failure as LinkFailure {
            linkFailed(failure)
        } catch {
            events.append(.localFailure(reason: "cannot upload \(preparedDirectory)/\(name): \(error)"))
        }
    }

    private func feedUpload(_ message: Message) {
        guard let sender else { return }
        do {
            guard try sender.handle(message, send: sendUpload) else {
                logger.warning("ignoring \(message.type) that is not about the upload of \(sender.offer.name)")
                return
            }
            if sender.isCommitted {
                self.sender = nil
                events.append(.uploadCommitted(file: sender.offer.name, bytes: sender.offer.size))
            }
        } catch let failure as LinkFailure {
            linkFailed(failure)
        } catch {
            events.append(.localFailure(reason: "the upload of \(sender.offer.name) failed: \(error)"))
        }
    }

    private func feedDownload(_ message: Message) {
        guard let receiver else { return }
        let outcome: ChunkReceiver.Outcome
        do { outcome = try receiver.handle(message) } catch let error as TransferError {
            events.append(.downloadRefused(reason: error.description, report: error.report))
            return
        } catch {
            events.append(.localFailure(reason: "receiving a merged model failed: \(error)"))
            return
        }
        for reply in outcome.replies { send(reply) }
        if let file = outcome.completed {
            self.receiver = nil
            events.append(.downloadCompleted(path: file.path))
        }
    }

    /// On the worker: a received merged weights file becomes `round-<id>/merged/<label>`
    /// (checked against this agent's model), then the model is scored on the local test split.
    private func evaluate(round: Int, _ job: PendingEvaluation) {
        let work = self.work, logger = self.logger, agent = config.name, prepared = preparedDirectory
        let mergedRoot = roundDirectory(round) + "/merged"
        worker.start {
            var directory = prepared
            if let weights = job.weights {
                do {
                    try MergedDownload.assemble(weights: weights, localModel: prepared, agentName: agent, headsPrefix: job.headsPrefix,
                                                mergedRoot: mergedRoot, label: job.label)
                } catch {
                    return .evaluationFailed(round: round, label: job.label, reason: "the merged model cannot be used: \(error)")
                }
                directory = mergedRoot + "/" + job.label
            }
            do {
                return .evaluated(round: round, label: job.label, metrics: try work.evaluate(modelDirectory: directory, logger: logger))
            } catch {
                return .evaluationFailed(round: round, label: job.label, reason: "\(error)")
            }
        }
    }

    // MARK: EVALs on disk

    private func sentPath(_ round: Int) -> String { roundDirectory(round) + "/evals-sent.json" }

    /// The EVALs saved for merge id `round`, unless they belong to another merge under that id
    /// (re-sending those would be EVALs of models this aggregator never sent).
    private func loadSentEvaluations(round: Int, merge: String) -> SentEvaluations {
        guard let data = FileManager.default.contents(atPath: sentPath(round)),
              let saved = try? JSONDecoder().decode(SentEvaluations.self, from: data) else { return SentEvaluations() }
        if let owner = saved.merge, owner != merge {
            logger.info("EVALs saved for merge id \(round) belong to merge '\(loggable(owner))', not '\(loggable(merge))': starting afresh")
            return SentEvaluations()
        }
        return saved
    }

    private func saveSentEvaluations(_ evaluations: SentEvaluations, round: Int) throws {
        try FileManager.default.createDirectory(atPath: roundDirectory(round), withIntermediateDirectories: true)
        var stamped = evaluations
        stamped.merge = mergeNames[round] ?? evaluations.merge
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(stamped), to: sentPath(round))
    }
}
