// The aggregator service's shell: it owns the sockets, the contribution store, the check and
// merge threads and the merge-file directory, turns what happens into AggregatorEvents for
// the pure transition `step` (AggregatorTransition.swift), and carries out the effects.
// Merge files are picked up by polling their names, sizes and mtimes once a second; forget
// requests by polling the spool's requests/ directory.
//
// What the aggregator trusts of an agent: nothing but its certificate name. Every upload is
// capped by what a contribution can be, never replaces a committed file, and must pass the
// plausibility checks (ContributionCheck) before it may reach a merge.

import AtomicIO
import DaemonSupport
import Foundation
import Logging
import Merge
import Protocol
import SafeTensors

public final class AggregatorDaemon: @unchecked Sendable {
    public let config: AggregatorConfig
    /// `--once`: exit when the merges defined at start are finished (or failed: exit 3).
    public let once: Bool
    private var logger: Logger
    private var state: AggregatorState!
    private var server: SecureServer?
    private var store: ContributionStore!
    private var checker: ContributionCheck?
    private let checks = ContributionChecks()
    private let merges = MergeThread()
    private var sizeLimits: [String: UInt64] = [:]
    private var receivers: [PeerID: ChunkReceiver] = [:]
    private var senders: [PeerID: ChunkSender] = [:]
    /// Which agent each upload link belongs to, and how each agent's upload went (for the report).
    private var uploadAgents: [PeerID: String] = [:]
    private var uploads = UploadTimings()
    /// Merge outcomes of the current generation, for the reports: merge → outcomes.
    private var outcomes: [String: [MergeRunner.Outcome]] = [:]
    private var pending: [AggregatorEvent] = []
    private var exitCode: DaemonExit?
    private var mergeFiles: MergeFiles!
    private var mergeFilesStamp = ""
    private var lastPoll = 0.0
    private var lastStatus = ""
    private var lastPublished = 0.0

    public init(config: AggregatorConfig, once: Bool = false, logger: Logger) {
        self.config = config
        self.once = once
        self.logger = logger
    }

    /// The endpoint actually bound (meaningful after `run` has started; tests bind port 0).
    public private(set) var boundEndpoint: String?

    /// Serves until stopped (or, with `once`, until the merges defined at start are done).
    public func run() throws -> DaemonExit {
        let baseFingerprint = try ModelFingerprint.of(directory: config.baseModel)
        let checker = try ContributionCheck(baseModel: config.baseModel, limits: config.checks)
        self.checker = checker
        sizeLimits = Self.uploadLimits(base: checker.base)
        store = try ContributionStore(root: config.spool)
        do { try FileManager.default.createDirectory(atPath: config.output, withIntermediateDirectories: true) } catch {
            throw StoreError.cannotCreate(path: config.output, reason: (error as NSError).localizedFailureReason ?? error.localizedDescription)
        }
        if !MergeOutput.removeStalePartials(outputRoot: config.output).isEmpty {
            logger.notice("removed half-written merged models a stopped aggregator left in \(config.output)")
        }
        let allow = Set(config.allow)
        // Certificate names become store directories: only portable names on the allow-list.
        let server = try SecureServer(endpoint: config.listen, tls: config.tls,
                                      allow: { PortableName.isAgentName($0) && allow.contains($0) }, logger: logger)
        self.server = server
        boundEndpoint = server.endpoint
        defer { server.close() }

        // Start from disk: the store, forgotten agents, every merge's record and ledger.
        var initial = AggregatorState(allow: config.allow, baseFingerprint: baseFingerprint, baseModel: config.baseModel, once: once)
        initial.now = Date().timeIntervalSince1970
        initial.admitsOtherBases = config.align != nil
        initial.agents = ContributionStore.scan(root: config.spool)
        initial.forgotten = ContributionStore.forgotten(root: config.spool)
        for (name, (record, ledger)) in MergeOutput.records(outputRoot: config.output) {
            initial.records[name] = record
            initial.ledgers[name] = ledger
        }
        state = initial
        mergeFiles = MergeFiles(directory: config.merges, inline: config.inlineMerge, allow: config.allow, alignReference: config.align?.reference)
        pollMergeFiles(force: true)
        let stored = state.agents.filter { $0.value.current != nil }.keys.sorted()
        logger.info("aggregator listening", metadata: [
            "endpoint": "\(server.endpoint)", "merges": "\(state.merges.keys.sorted().joined(separator: ","))",
            "merge_files": "\(config.merges ?? "-")", "contributions_stored": "\(stored.joined(separator: ","))"])

        while true {
            if let signo = StopSignal.requested {
                publishStatus(force: true)
                logger.notice("stopping on signal \(signo); the store and outputs are consistent, run again to resume")
                return .interrupted
            }
            if let event = try server.receive(timeout: 0.2) { apply(translate(event)) }
            while let verdict = checks.take() {
                apply(.checked(agent: verdict.agent, fingerprint: verdict.fingerprint, reasons: verdict.reasons, distances: verdict.distances))
            }
            while let result = merges.take() {
                switch result.value {
                case .success(let done):
                    if state.merges[result.merge]?.generation == result.generation { outcomes[result.merge, default: []] += done }
                    apply(.mergeDone(merge: result.merge, generation: result.generation, seconds: Dictionary(done.map { ($0.label, $0.seconds) }) { a, _ in a }))
                case .failure(let why):
                    apply(.mergeFailed(merge: result.merge, generation: result.generation, reason: why))
                }
            }
            let now = Date().timeIntervalSince1970
            if now - lastPoll >= 1 {
                lastPoll = now
                pollMergeFiles(force: false)
                for agent in store.pendingForgets() { apply(.forget(agent: agent)) }
            }
            apply(.tick(now: now))
            if let exitCode {
                // Let the last EVALUATED acknowledgements reach their agents (the socket drops
                // unsent messages on close): serve until every agent has left, at most 5 s.
                let until = Date().addingTimeInterval(5)
                while !state.links.isEmpty && Date() < until {
                    if let event = try? server.receive(timeout: 0.2) { apply(translate(event)) }
                }
                publishStatus(force: true)
                return exitCode
            }
        }
    }

    /// The largest upload of each file a contribution can need: config.json is small; a model
    /// is about the base model's size (×2 for a base stored in 16-bit, plus room for heads); the
    /// statistics are at most a Gram and a K-FAC factor per linear and a Fisher per parameter.
    static func uploadLimits(base: NamedTensors) -> [String: UInt64] {
        var weights: UInt64 = 0, statistics: UInt64 = 0
        for name in base.names {
            let t = base[name]!
            weights += UInt64(t.count) * 4
            statistics += UInt64(t.count) * 4
            if t.rank == 2 { statistics += UInt64(t.shape[0] * t.shape[0] + t.shape[1] * t.shape[1]) * 4 }
        }
        let mib: UInt64 = 1 << 20
        return ["config.json": mib, "model.safetensors": weights * 2 + 64 * mib, "stats.safetensors": statistics + statistics / 4 + 64 * mib]
    }

    /// Where a secure merge's masked uploads are spooled, per generation (a re-run starts afresh).
    static func secureDirectory(spool: String, merge: String, generation: Int) -> String {
        spool + "/secure/" + merge + "/g\(generation)"
    }

    /// The largest masked upload: per method at most three words per parameter (fisher: wF,
    /// wFθ, wθ) and, for regmean, a packed Gram and two d×out products per linear; 8 bytes each.
    static func maskedUploadLimit(base: NamedTensors?, methods: Int) -> UInt64 {
        var words: UInt64 = 0
        for name in base?.names ?? [] {
            let t = base![name]!
            words += UInt64(t.count) * 3
            if t.rank == 2 { words += UInt64(t.shape[1] * (t.shape[1] + 1) / 2) + UInt64(t.count) * 2 }
        }
        return UInt64(max(methods, 1)) * words * 8 + (64 << 20)
    }

    private func translate(_ event: ServerEvent) -> AggregatorEvent {
        switch event {
        case .connected(let peer, let name): return .connected(peer, name: name)
        case .refused(_, let reason): return .connectionRefused(reason: "\(reason)")
        case .disconnected(let peer, let reason):
            receivers[peer] = nil
            senders[peer] = nil
            uploadAgents[peer] = nil
            if case .superseded = reason { return .disconnected(peer, reason: "\(reason)", superseded: true) }
            return .disconnected(peer, reason: "\(reason)", superseded: false)
        case .message(let peer, let message): return .message(peer, message)
        }
    }

    /// Reads the merge files when they changed (or `force`), and tells the state machine.
    private func pollMergeFiles(force: Bool) {
        let stamp = mergeFiles.stamp()
        guard force || stamp != mergeFilesStamp else { return }
        mergeFilesStamp = stamp
        let known = state.records.mapValues(\.id).merging(state.merges.mapValues(\.definition.id)) { a, _ in a }
        let (definitions, errors) = mergeFiles.read(knownIDs: known, previous: state.merges.values.map(\.definition))
        for error in errors { logger.error("merge file not used: \(error)") }
        apply(.definitions(definitions))
    }

    // MARK: stepping

    private func apply(_ event: AggregatorEvent) {
        pending.append(event)
        while !pending.isEmpty {
            let next = pending.removeFirst()
            let (newState, effects) = step(state, next)
            state = newState
            execute(effects)
        }
        publishStatus()
    }

    /// Carries out effects in order; a failed durable write stops the rest of them.
    private func execute(_ effects: [AggregatorEffect]) {
        for effect in effects {
            do { try perform(effect) } catch {
                logger.error("cannot carry out \(Self.describe(effect)): \(error)")
                if Self.isDurable(effect) { return }
            }
        }
    }

    private static func isDurable(_ effect: AggregatorEffect) -> Bool {
        switch effect {
        case .markChecked, .quarantine, .retireStatistics, .deleteContribution, .saveForgotten, .saveRecord, .saveLedger: true
        default: false
        }
    }

    private static func describe(_ effect: AggregatorEffect) -> String {
        "\(effect)".prefix(120).description
    }

    private func perform(_ effect: AggregatorEffect) throws {
        switch effect {
        case .send(let peer, let message):
            try? server?.send(message, to: peer)
        case .disconnect(let peer):
            server?.disconnect(peer)
            receivers[peer] = nil
            senders[peer] = nil
        case .openUpload(let peer, let agent, let fingerprint):
            var agentLogger = logger
            agentLogger[metadataKey: "agent"] = "\(agent)"
            receivers[peer] = try ChunkReceiver(spool: store.directory(agent, fingerprint), sizeLimits: sizeLimits,
                                                replacesCommitted: false, diskReserve: 256 << 20, logger: agentLogger)
            uploadAgents[peer] = agent
            uploads.opened(agent, at: Date().timeIntervalSince1970)
        case .openMaskedUpload(let peer, let agent, let merge, let generation):
            var agentLogger = logger
            agentLogger[metadataKey: "agent"] = "\(agent)"
            let limit = Self.maskedUploadLimit(base: checker?.base, methods: state.merges[merge]?.definition.methods.count ?? 1)
            receivers[peer] = try ChunkReceiver(spool: Self.secureDirectory(spool: config.spool, merge: merge, generation: generation) + "/" + agent,
                                                sizeLimits: [SecurePlan.uploadName(merge: merge): limit],
                                                replacesCommitted: false, diskReserve: 256 << 20, logger: agentLogger)
            uploadAgents[peer] = agent
            uploads.opened(agent, at: Date().timeIntervalSince1970)
        case .receiveUpload(let peer, let message):
            guard let receiver = receivers[peer] else { return }
            if let agent = uploadAgents[peer] { uploads.received(message, agent: agent, at: Date().timeIntervalSince1970) }
            do {
                let outcome = try receiver.handle(message)
                for reply in outcome.replies { try? server?.send(reply, to: peer) }
                if let file = outcome.completed {
                    if let agent = uploadAgents[peer] { uploads.committed(agent, at: Date().timeIntervalSince1970) }
                    let kinds = file.name == "stats.safetensors" ? ContributionStore.statisticKinds(path: file.path) : []
                    pending.append(.uploadCommitted(peer, file: file.name, bytes: file.size, kinds: kinds))
                }
            } catch {
                pending.append(.linkFailed(peer, error: "\(error)", report: (error as? TransferError)?.report ?? .error(ErrorReport(code: "protocol", message: "\(error)"))))
            }
        case .startDownload(let peer, let merge, let label, var announcement):
            do {
                let sender = try ChunkSender(path: MergeOutput(outputRoot: config.output, merge: merge).mergedDirectory(label) + "/model.safetensors",
                                             name: label + ".safetensors")
                announcement.files = [MergedFile(name: sender.offer.name, size: sender.offer.size, sha256: sender.offer.sha256)]
                senders[peer] = sender
                try server?.send(.merged(announcement), to: peer)
                try sender.start { try self.server?.send($0, to: peer) }
            } catch {
                pending.append(.linkFailed(peer, error: "cannot send merged model \(merge)/\(label): \(error)",
                                           report: .error(ErrorReport(code: "internal", message: "the aggregator cannot send \(label) right now"))))
            }
        case .forwardDownload(let peer, let message):
            guard let sender = senders[peer] else { return }
            do {
                try sender.handle(message) { try self.server?.send($0, to: peer) }
                if sender.isCommitted {
                    senders[peer] = nil
                    pending.append(.downloadDelivered(peer, bytes: sender.offer.size))
                }
            } catch {
                pending.append(.linkFailed(peer, error: "\(error)", report: (error as? TransferError)?.report ?? .error(ErrorReport(code: "protocol", message: "\(error)"))))
            }
        case .check(let agent, let fingerprint):
            guard let checker else { return }
            checks.submit(agent: agent, fingerprint: fingerprint, directory: store.directory(agent, fingerprint), checker: checker,
                          fromBase: state.agents[agent]?.otherBase == nil)
        case .markChecked(let agent, let fingerprint):
            try store.markChecked(agent, fingerprint)
        case .quarantine(let agent, let fingerprint, let reasons):
            try store.quarantine(agent, fingerprint, reasons: reasons)
        case .retireStatistics(let agent, let fingerprint):
            try store.retireStatistics(agent, fingerprint)
        case .deleteContribution(let agent, let fingerprint):
            try store.delete(agent, fingerprint)
        case .saveForgotten(let names):
            try store.saveForgotten(names)
        case .completeForget(let agent):
            try store.completeForget(agent)
        case .startMerge(let definition, let generation, let members, let fresh):
            let output = MergeOutput(outputRoot: config.output, merge: definition.name)
            try output.create()
            if fresh { outcomes[definition.name] = [] }
            var runner = MergeRunner(definition: definition, members: members, store: store, output: output, baseModel: config.baseModel, fresh: fresh)
            runner.align = config.align
            if definition.secure {
                guard let scale = state.merges[definition.name]?.secure.scale else {
                    pending.append(.mergeFailed(merge: definition.name, generation: generation,
                                                reason: "the secure merge's scale is not known to this process (it restarted mid-exchange); edit the merge file to run it again"))
                    return
                }
                let progress = state.merges[definition.name]!.secure
                runner.secure = MergeRunner.SecureInputs(directory: Self.secureDirectory(spool: config.spool, merge: definition.name, generation: generation),
                                                         scale: scale, dropped: progress.dropped, revealed: progress.revealRequested ?? [],
                                                         reveals: progress.reveals)
            }
            merges.submit(merge: definition.name, generation: generation, runner: runner, logger: logger)
        case .saveRecord(let record):
            let output = MergeOutput(outputRoot: config.output, merge: record.name)
            try output.create()
            try output.saveRecord(record)
        case .saveLedger(let merge, let ledger):
            let output = MergeOutput(outputRoot: config.output, merge: merge)
            try output.create()
            try output.saveLedger(ledger)
        case .writeReport(let name, let missing):
            guard let merge = state.merges[name] else { return }
            let members = merge.phase.members.keys.sorted()
            let subset = merge.definition.subset
            let quarantined = Dictionary(uniqueKeysWithValues: subset.compactMap { a in state.agents[a]?.quarantine.map { (a, $0) } })
            var report = RoundReport(definition: merge.definition, baseModel: config.baseModel, merged: members,
                                     absent: subset.filter { !members.contains($0) && quarantined[$0] == nil },
                                     evaluations: merge.ledger.evaluations, outcomes: outcomes[name] ?? [], missingEvaluations: missing,
                                     quarantined: quarantined, failedEvaluations: merge.ledger.failures,
                                     uploads: uploads.byAgent.filter { subset.contains($0.key) })
            let output = MergeOutput(outputRoot: config.output, merge: name)
            if merge.definition.secure { report.secure = FileManager.default.contents(atPath: output.directory + "/" + MergeRunner.secureSummaryFile) }
            try report.write(to: output.directory)
            logger.info("report written", metadata: ["merge": "\(name)", "report": "\(output.directory)/report.md"])
        case .log(let line):
            logger.log(level: line.level, "\(line.message)", metadata: line.metadata.mapValues { .string($0) })
        case .exit(let code):
            exitCode = code
        }
    }

    /// status.json and the metrics file, rewritten atomically when what they say changed — at
    /// most once a second (an upload changes the byte counters with every chunk), unless `force`.
    private func publishStatus(force: Bool = false) {
        let now = Date().timeIntervalSince1970
        guard force || now - lastPublished >= 1 else { return }
        let status = ServiceStatus.snapshot(state)
        let metrics = ServiceStatus.metrics(state)
        let text = metrics + (String(data: (try? ServiceStatus.encode(status)) ?? Data(), encoding: .utf8) ?? "")
        guard text != lastStatus else { return }
        lastStatus = text
        lastPublished = now
        do {
            try AtomicFile.write(try ServiceStatus.encode(status), to: config.spool + "/status.json")
            try AtomicFile.write(Data(metrics.utf8), to: config.metrics)
        } catch {
            logger.warning("cannot write the status or metrics file: \(error)")
        }
    }
}

/// The plausibility checks run on their own thread (loading and factoring a model's
/// statistics takes seconds) while the event loop keeps serving; verdicts are polled.
final class ContributionChecks: @unchecked Sendable {
    struct Verdict { var agent: String; var fingerprint: String; var reasons: [String]; var distances: String }
    private let lock = NSLock()
    private var done: [Verdict] = []
    private let queue = DispatchQueue(label: "fedmerge.contribution-checks")

    func submit(agent: String, fingerprint: String, directory: String, checker: ContributionCheck, fromBase: Bool) {
        queue.async { [self] in
            let (reasons, distances) = checker.reasons(directory: directory, fromBase: fromBase)
            lock.lock(); done.append(Verdict(agent: agent, fingerprint: fingerprint, reasons: reasons, distances: distances)); lock.unlock()
        }
    }

    func take() -> Verdict? {
        lock.lock(); defer { lock.unlock() }
        return done.isEmpty ? nil : done.removeFirst()
    }
}

/// One merge at a time on its own thread (two cores: merges queue rather than compete);
/// results are polled by the event loop.
final class MergeThread: @unchecked Sendable {
    struct Result { var merge: String; var generation: Int; var value: Value }
    enum Value { case success([MergeRunner.Outcome]), failure(String) }
    private let lock = NSLock()
    private var done: [Result] = []
    private let queue = DispatchQueue(label: "fedmerge.merges")

    func submit(merge: String, generation: Int, runner: MergeRunner, logger: Logger) {
        queue.async { [self] in
            let value: Value
            do { value = .success(try runner.run(logger: logger)) } catch { value = .failure("\(error)") }
            lock.lock(); done.append(Result(merge: merge, generation: generation, value: value)); lock.unlock()
        }
    }

    func take() -> Result? {
        lock.lock(); defer { lock.unlock() }
        return done.isEmpty ? nil : done.removeFirst()
    }
}
