// The aggregator daemon: admits agents, spools their uploads, merges once the subset 𝒦 is
// in (or at the deadline with a quorum), sends every merged model back, collects EVALs and
// writes the report. A thin state machine over Protocol (wire) and Merge (arithmetic).
//
// Round phases (one `switch` each in `advance()`):
//   collecting → merging → distributing → finished
//        └──── failed (deadline passed without min_agents; the spool is kept)
// Per-agent downloads of merged models: one ChunkSender at a time, methods in config order.
//
// What the aggregator trusts of an agent: nothing but its certificate name. Every upload is
// capped by what the round can need, never replaces a committed file, and must pass the
// plausibility checks (ContributionCheck) before it may reach a merge; one that fails is
// quarantined with its reason, its agent told and refused for the round, and the rest merge
// if the quorum allows. An EVAL counts only for a merged model this agent was sent.

import AtomicIO
import DaemonSupport
import Foundation
import Logging
import Merge
import Protocol
import SafeTensors

public final class AggregatorDaemon: @unchecked Sendable {
    enum Phase: Equatable {
        case collecting
        case merging
        case distributing
        case finished
        case failed(String)
    }

    /// What the aggregator knows of one connected agent.
    final class AgentLink {
        let name: String
        let peer: PeerID
        var welcomed = false
        var receiver: ChunkReceiver?
        /// Merged model on its way to the agent: (method label, sender).
        var download: (label: String, sender: ChunkSender)?
        /// Methods whose merged model this link has delivered (the agent evaluates them next).
        var delivered: Set<String> = []
        init(name: String, peer: PeerID) { self.name = name; self.peer = peer }
    }

    public let config: AggregatorConfig
    let spool: RoundSpool
    let required: [String]
    let kinds: Set<StatisticKind>
    private var logger: Logger
    private var checker: ContributionCheck?
    private let checks = ContributionChecks()
    /// Agents whose contribution is being checked.
    private var checking: Set<String> = []
    private var sizeLimits: [String: UInt64] = [:]
    private var phase = Phase.collecting
    private var server: SecureServer?
    private var links: [PeerID: AgentLink] = [:]
    private var baseFingerprint = ""
    private let startedAt = Date()
    private var distributingSince: Date?
    /// Agents whose uploads the merge used.
    private var merged: [String] = []
    private var mergeOutcomes: [RoundMerger.Outcome] = []
    private var evaluations: RoundSpool.Evaluations
    private var failures: RoundSpool.Failures
    private var delivered: RoundSpool.Delivered
    private let mergeResult = MergeThreadResult()

    public init(config: AggregatorConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.logger[metadataKey: "round"] = "\(config.round)"
        spool = try RoundSpool(spoolRoot: config.spool, outputRoot: config.output, round: config.round)
        kinds = config.statisticKinds
        required = RoundSpool.requiredFiles(needStatistics: !kinds.isEmpty)
        evaluations = spool.loadEvaluations()
        failures = spool.loadFailures()
        delivered = spool.loadDelivered()
    }

    /// The endpoint actually bound (meaningful after `run` has started; tests bind port 0).
    public private(set) var boundEndpoint: String?

    /// Serves until the round is finished, failed, or a stop signal arrives.
    public func run() throws -> DaemonExit {
        baseFingerprint = try ModelFingerprint.of(directory: config.baseModel)
        let checker = try ContributionCheck(baseModel: config.baseModel, limits: config.checks, kinds: kinds)
        self.checker = checker
        sizeLimits = Self.uploadLimits(base: checker.base)
        let allow = Set(config.allow)
        // Certificate names become spool directories: only portable names on the allow-list.
        let server = try SecureServer(endpoint: config.listen, tls: config.tls,
                                      allow: { PortableName.isAgentName($0) && allow.contains($0) }, logger: logger)
        self.server = server
        boundEndpoint = server.endpoint
        defer { server.close() }
        if !spool.removeStalePartials().isEmpty { logger.notice("removed half-written merged models a stopped aggregator left in \(spool.output)") }
        reviewStoredContributions()
        let done = config.subset.filter { isReady($0) }
        logger.info("aggregator listening", metadata: [
            "endpoint": "\(server.endpoint)", "subset": "\(config.subset.joined(separator: ","))",
            "methods": "\(config.methods.map(\.label).joined(separator: ","))",
            "statistics": "\(config.wantedStatistics.joined(separator: ","))",
            "already_committed": "\(done.joined(separator: ","))"])
        if let writtenAt = resumeFromDisk() { logger.info("resuming round from disk", metadata: ["phase": "\(writtenAt)"]) }

        while true {
            if let signo = StopSignal.requested {
                logger.notice("stopping on signal \(signo); spool and outputs are consistent, run again to resume")
                return .interrupted
            }
            if let event = try server.receive(timeout: 0.2) { handle(event) }
            advance()
            switch phase {
            case .finished:
                // Let the last EVALUATED acknowledgements reach their agents (the socket drops
                // unsent messages on close): serve until every agent has left, at most 5 s.
                let until = Date().addingTimeInterval(5)
                while !links.isEmpty && Date() < until {
                    if let event = try? server.receive(timeout: 0.2) { handle(event) }
                }
                return .success
            case .failed(let why):
                logger.error("round failed: \(why)")
                return .roundFailed
            default: continue
            }
        }
    }

    /// The largest upload of each file this round can need: config.json is small; a model is
    /// about the base model's size (×2 for a base stored in 16-bit, plus room for heads); the
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

    /// At start: quarantined agents stay out; statistics that no longer cover the round's
    /// methods are retired so their agents send new ones; complete uploads not yet judged
    /// (or judged on other files) are checked.
    private func reviewStoredContributions() {
        for agent in config.subset {
            if let q = spool.quarantined(agent) {
                logger.warning("agent's contribution is quarantined; it will not be merged", metadata: ["agent": "\(agent)", "reason": "\(q.reasons.joined(separator: "; "))"])
                continue
            }
            let missing = spool.missingStatistics(agent, kinds: kinds)
            if spool.committedFiles(agent, required: required).contains("stats.safetensors"), !missing.isEmpty {
                do {
                    let moved = try spool.retireStatistics(agent)
                    logger.warning("committed statistics lack what the round's methods need; asking the agent again",
                                   metadata: ["agent": "\(agent)", "lacks": "\(missing.map(\.rawValue).joined(separator: ","))", "kept_as": "\(moved)"])
                } catch {
                    logger.error("cannot retire stale statistics", metadata: ["agent": "\(agent)", "error": "\(error)"])
                }
            }
            if spool.isComplete(agent, required: required, kinds: kinds) && !spool.isChecked(agent, files: required) { submitCheck(agent) }
        }
    }

    /// Complete, checked and not quarantined: may be merged.
    private func isReady(_ agent: String) -> Bool {
        spool.quarantined(agent) == nil && spool.isComplete(agent, required: required, kinds: kinds) && spool.isChecked(agent, files: required)
    }

    private func submitCheck(_ agent: String) {
        guard let checker, !checking.contains(agent) else { return }
        checking.insert(agent)
        checks.submit(agent: agent, directory: spool.agentDirectory(agent), checker: checker)
    }

    /// A verdict from the check thread: record it, or quarantine the contribution and tell its agent.
    private func apply(_ verdict: ContributionChecks.Verdict) {
        checking.remove(verdict.agent)
        if verdict.reasons.isEmpty {
            do {
                try spool.markChecked(verdict.agent, files: required)
                logger.info("contribution passed the plausibility checks", metadata: [
                    "agent": "\(verdict.agent)", "distance_from_base": "\(verdict.distances)", "seconds": "\(String(format: "%.2f", verdict.seconds))"])
            } catch {
                logger.error("cannot record a check verdict", metadata: ["agent": "\(verdict.agent)", "error": "\(error)"])
            }
            return
        }
        quarantine(verdict.agent, reasons: verdict.reasons)
    }

    private func quarantine(_ agent: String, reasons: [String]) {
        let safe = reasons.map { loggable($0, limit: 400) }
        logger.error("contribution quarantined; it will not be merged", metadata: ["agent": "\(agent)", "reasons": "\(safe.joined(separator: "; "))"])
        do { try spool.quarantine(agent, reasons: safe) } catch {
            logger.error("cannot quarantine", metadata: ["agent": "\(agent)", "error": "\(error)"])
        }
        for link in links.values where link.name == agent {
            try? server?.send(.error(ErrorReport(code: "quarantined", message: "your contribution failed the aggregator's checks and will not be merged: \(safe.joined(separator: "; "))")), to: link.peer)
            server?.disconnect(link.peer)
            links[link.peer] = nil
        }
    }

    /// After a restart: merged outputs already on disk mean the merge is done.
    private func resumeFromDisk() -> String? {
        let complete = config.subset.filter { isReady($0) }
        if !complete.isEmpty, config.methods.allSatisfy({ spool.hasMerged($0.label) }),
           let data = FileManager.default.contents(atPath: spool.output + "/merged-agents.json"),
           let agents = try? JSONDecoder().decode([String].self, from: data) {
            merged = agents
            phase = .distributing
            distributingSince = Date()
            return "distributing"
        }
        return nil
    }

    // MARK: round phases

    private func advance() {
        switch phase {
        case .collecting:
            while let verdict = checks.take() { apply(verdict) }
            let active = config.subset.filter { spool.quarantined($0) == nil }
            guard active.count >= config.minAgents else {
                let out = config.subset.filter { !active.contains($0) }.map { "\($0) (\(spool.quarantined($0)?.reasons.first ?? "quarantined"))" }
                phase = .failed("only \(active.count) of \(config.subset.count) agents can still be merged (min_agents \(config.minAgents)); quarantined: \(out.joined(separator: "; ")). Their uploads are kept in \(spool.quarantineRoot).")
                return
            }
            let complete = active.filter { isReady($0) }
            if complete.count == active.count {
                startMerge(complete)
            } else if Date().timeIntervalSince(startedAt) >= config.deadline, checking.isEmpty {
                let absent = config.subset.filter { !complete.contains($0) }
                if complete.count >= config.minAgents {
                    logger.warning("deadline reached; merging the quorum", metadata: ["committed": "\(complete.joined(separator: ","))", "absent": "\(absent.joined(separator: ","))"])
                    startMerge(complete)
                } else {
                    phase = .failed("deadline of \(Int(config.deadline)) s passed with \(complete.count) of \(config.subset.count) agents committed (min_agents \(config.minAgents)); absent: \(absent.joined(separator: ", ")). Uploads stay in \(spool.uploads).")
                }
            }
        case .merging:
            guard let result = mergeResult.take() else { return }
            switch result {
            case .success(let outcomes):
                mergeOutcomes = outcomes
                phase = .distributing
                distributingSince = Date()
                for link in links.values where link.welcomed { sendNextDownload(link) }
            case .failure(let error):
                phase = .failed("merge failed: \(error)")
            }
        case .distributing:
            let pending = merged.filter { agent in !allEvaluated(agent) }
            if pending.isEmpty {
                finish(missing: [])
            } else if let since = distributingSince, Date().timeIntervalSince(since) >= config.evalTimeout {
                logger.warning("eval_timeout reached; writing the report without some evaluations", metadata: ["pending": "\(pending.joined(separator: ","))"])
                finish(missing: pending)
            }
        case .finished, .failed:
            break
        }
    }

    private func startMerge(_ agents: [String]) {
        merged = agents.sorted()
        phase = .merging
        logger.info("all uploads in; merging", metadata: ["agents": "\(merged.joined(separator: ","))"])
        do {
            try AtomicFile.write(try JSONEncoder().encode(merged), to: spool.output + "/merged-agents.json")
        } catch {
            phase = .failed("cannot record the merged agents: \(error)")
            return
        }
        let merger = RoundMerger(config: config, spool: spool)
        let agents = merged
        let logger = self.logger
        let box = mergeResult
        // Merging takes seconds to minutes; the wire keeps serving heartbeats meanwhile.
        Thread.detachNewThread {
            do { box.put(.success(try merger.run(agents: agents, logger: logger))) } catch { box.put(.failure("\(error)")) }
        }
    }

    /// Every model this agent should score (its own and each merge) is scored or reported failed.
    private func allEvaluated(_ agent: String) -> Bool {
        (["local"] + config.methods.map(\.label)).allSatisfy { isEvaluated(agent, $0) }
    }

    private func isEvaluated(_ agent: String, _ label: String) -> Bool {
        evaluations[agent]?[label] != nil || failures[agent]?[label] != nil
    }

    private func finish(missing: [String]) {
        do {
            let report = RoundReport(config: config, merged: merged, absent: config.subset.filter { !merged.contains($0) && spool.quarantined($0) == nil },
                                     evaluations: evaluations, outcomes: mergeOutcomes, missingEvaluations: missing,
                                     quarantined: Dictionary(uniqueKeysWithValues: config.subset.compactMap { a in spool.quarantined(a).map { (a, $0.reasons) } }),
                                     failedEvaluations: failures)
            try report.write(to: spool.output)
            logger.info("round complete", metadata: ["report": "\(spool.output)/report.md"])
            phase = .finished
        } catch {
            phase = .failed("cannot write the report: \(error)")
        }
    }

    // MARK: events

    private func handle(_ event: ServerEvent) {
        switch event {
        case .connected(let peer, let name):
            links[peer] = AgentLink(name: name, peer: peer)
            logger.info("agent connected (TLS ok)", metadata: ["agent": "\(name)"])
        case .refused(_, let reason):
            logger.warning("connection refused", metadata: ["reason": "\(reason)"])
        case .disconnected(let peer, let reason):
            if let link = links.removeValue(forKey: peer) {
                if case .superseded = reason {
                    // Two live processes with one certificate fight over one identity; say so loudly.
                    logger.warning("agent reconnected from a new link, replacing the old one; if this repeats, two processes share certificate '\(link.name)'",
                                   metadata: ["agent": "\(link.name)", "reason": "\(reason)"])
                } else {
                    logger.info("agent disconnected", metadata: ["agent": "\(link.name)", "reason": "\(reason)"])
                }
            }
        case .message(let peer, let message):
            guard let link = links[peer] else { return }
            do { try handle(message, from: link) } catch {
                logger.error("dropping agent after a protocol error", metadata: ["agent": "\(link.name)", "error": "\(loggable("\(error)", limit: 400))"])
                let report = (error as? TransferError)?.report ?? .error(ErrorReport(code: "protocol", message: "\(error)"))
                try? server?.send(report, to: peer)
                server?.disconnect(peer)
                links[peer] = nil
            }
        }
    }

    private func handle(_ message: Message, from link: AgentLink) throws {
        switch message {
        case .hello(let hello):
            try admit(hello, link)
        case .offer, .chunk, .commit:
            guard link.welcomed else { throw AggregatorError.notWelcomed(link.name, message.type.description) }
            try receiveUpload(message, link)
        case .resume, .ack, .committed:
            guard let download = link.download else { throw AggregatorError.unexpected(link.name, message.type.description) }
            try download.sender.handle(message) { try server!.send($0, to: link.peer) }
            if download.sender.isCommitted {
                logger.info("merged model delivered", metadata: ["agent": "\(link.name)", "method": "\(download.label)",
                                                                "bytes": "\(download.sender.offer.size)"])
                link.delivered.insert(download.label)
                if !(delivered[link.name] ?? []).contains(download.label) {
                    delivered[link.name, default: []].append(download.label)
                    try spool.saveDelivered(delivered)
                }
                link.download = nil
                sendNextDownload(link)
            }
        case .eval(let eval):
            try record(eval, from: link)
        case .error(let report):
            logger.warning("agent reported an error", metadata: ["agent": "\(link.name)", "code": "\(loggable(report.code))",
                                                                "method": "\(loggable(report.method ?? "-"))", "message": "\(loggable(report.message, limit: 400))"])
            if report.code == "eval_failed", let method = report.method {
                try mayEvaluate(method, link)
                if !isEvaluated(link.name, method) {
                    failures[link.name, default: [:]][method] = String(loggable(report.message, limit: 400))
                    try spool.saveFailures(failures)
                }
            }
        case .heartbeat:
            break
        default:
            throw AggregatorError.unexpected(link.name, message.type.description)
        }
    }

    /// An EVAL counts only for the round, for the agent's own model once that model is
    /// committed or for a merged model this agent was sent, with at most 32 finite metrics.
    /// The first value recorded stays; a repeat is acknowledged (the agent re-sends until it is).
    private func record(_ eval: Eval, from link: AgentLink) throws {
        guard eval.round == config.round else { throw AggregatorError.wrongRound(link.name, eval.round, config.round) }
        try mayEvaluate(eval.method, link)
        guard (1...32).contains(eval.metrics.count),
              eval.metrics.allSatisfy({ PortableName.isPortable($0.key, maxLength: 64) && $0.value.isFinite }) else {
            throw AggregatorError.badMetrics(link.name, eval.method)
        }
        if let earlier = evaluations[link.name]?[eval.method] {
            if earlier != eval.metrics {
                logger.warning("a second, different EVAL for one model is ignored; the first stays", metadata: ["agent": "\(link.name)", "method": "\(eval.method)"])
            }
        } else {
            evaluations[link.name, default: [:]][eval.method] = eval.metrics
            try spool.saveEvaluations(evaluations)
            logger.info("evaluation received", metadata: ["agent": "\(link.name)", "method": "\(eval.method)",
                                                         "metrics": "\(eval.metrics.keys.sorted().map { "\($0)=\(String(format: "%.4f", eval.metrics[$0]!))" }.joined(separator: " "))"])
        }
        // Durable now: tell the agent, which re-sends an EVAL until it sees this.
        try server!.send(.evaluated(Evaluated(round: config.round, method: eval.method)), to: link.peer)
    }

    /// Which model an agent may report on: its own once its contribution is in, or a merged
    /// model it was sent (recorded durably, so this survives restarts).
    private func mayEvaluate(_ method: String, _ link: AgentLink) throws {
        if method == "local" {
            // Its model must be in (statistics may still be on their way: an agent re-sends an
            // unacknowledged EVAL first thing after WELCOME, even when new statistics are wanted).
            guard spool.committedFiles(link.name, required: required).contains("model.safetensors") || merged.contains(link.name) else {
                throw AggregatorError.evalBeforeUpload(link.name)
            }
        } else {
            guard config.methods.contains(where: { $0.label == method }), (delivered[link.name] ?? []).contains(method) else {
                throw AggregatorError.evalNotDelivered(link.name, loggable(method, limit: 80))
            }
        }
    }

    /// HELLO: same certificate name, same base model, member of 𝒦, right round, not quarantined.
    private func admit(_ hello: Hello, _ link: AgentLink) throws {
        let refusal: String?
        if hello.name != link.name {
            refusal = "HELLO names '\(loggable(hello.name, limit: 80))' but the certificate is '\(link.name)'"
        } else if hello.protocolVersion != AggregatorDaemon.protocolVersion {
            refusal = "protocol version \(hello.protocolVersion) is not supported (aggregator speaks \(AggregatorDaemon.protocolVersion))"
        } else if hello.baseFingerprint != baseFingerprint {
            refusal = "different base model: fingerprint \(loggable(String(hello.baseFingerprint.prefix(12))))… ≠ the round's \(baseFingerprint.prefix(12))… (\(config.baseModel))"
        } else if !config.subset.contains(hello.name) {
            refusal = "'\(hello.name)' is not in this round's subset 𝒦 (\(config.subset.joined(separator: ", ")))"
        } else if let round = hello.round, round != config.round {
            refusal = "round \(round) requested, this aggregator runs round \(config.round)"
        } else if let q = spool.quarantined(hello.name) {
            refusal = "this agent's contribution is quarantined for round \(config.round) (\(q.reasons.joined(separator: "; "))); the operator must remove \(spool.quarantineRoot)/\(hello.name) to let it upload again"
        } else {
            refusal = nil
        }
        if let refusal {
            logger.warning("agent refused", metadata: ["agent": "\(link.name)", "reason": "\(refusal)"])
            try server!.send(.refused(Refused(reason: refusal)), to: link.peer)
            server!.disconnect(link.peer)
            links[link.peer] = nil
            return
        }
        link.welcomed = true
        var agentLogger = logger
        agentLogger[metadataKey: "agent"] = "\(link.name)"
        link.receiver = try ChunkReceiver(spool: spool.agentDirectory(link.name), sizeLimits: sizeLimits,
                                          replacesCommitted: false, diskReserve: 256 << 20, logger: agentLogger)
        let committed = spool.committedFiles(link.name, required: required)
        try server!.send(.welcome(Welcome(round: config.round, wantedStatistics: config.wantedStatistics,
                                          methods: config.methods.map(\.label),
                                          attributes: ["required": required.joined(separator: ","),
                                                       "committed": committed.joined(separator: ","),
                                                       "phase": phaseName])), to: link.peer)
        logger.info("agent admitted", metadata: ["agent": "\(link.name)", "committed_files": "\(committed.count)/\(required.count)"])
        if phase == .distributing { sendNextDownload(link) }
    }

    private var phaseName: String {
        switch phase {
        case .collecting: "collecting"
        case .merging: "merging"
        case .distributing: "distributing"
        case .finished: "finished"
        case .failed: "failed"
        }
    }

    private func receiveUpload(_ message: Message, _ link: AgentLink) throws {
        if case .offer(let offer) = message, !required.contains(offer.name) {
            throw AggregatorError.unexpectedFile(link.name, offer.name, required)
        }
        if phase != .collecting, case .offer(let offer) = message, !spool.isComplete(link.name, required: required) {
            logger.warning("upload after the merge started is kept but not merged", metadata: ["agent": "\(link.name)", "file": "\(offer.name)"])
        }
        let outcome = try link.receiver!.handle(message)
        for reply in outcome.replies { try server!.send(reply, to: link.peer) }
        if let file = outcome.completed {
            let have = spool.committedFiles(link.name, required: required)
            logger.info("upload committed", metadata: ["agent": "\(link.name)", "file": "\(file.name)", "bytes": "\(file.size)",
                                                       "files": "\(have.count)/\(required.count)"])
            if have.count == required.count, !spool.isChecked(link.name, files: required) {
                let lacking = spool.missingStatistics(link.name, kinds: kinds)
                if !lacking.isEmpty {
                    quarantine(link.name, reasons: ["stats.safetensors lacks the \(lacking.map(\.rawValue).joined(separator: ", ")) statistics this round's methods need (WELCOME asked for them)"])
                    return
                }
                logger.info("agent upload complete; checking it", metadata: ["agent": "\(link.name)"])
                submitCheck(link.name)
            }
        }
    }

    /// Starts sending the next merged model this agent has not evaluated yet.
    private func sendNextDownload(_ link: AgentLink) {
        guard link.download == nil, phase == .distributing, merged.contains(link.name) else { return }
        guard let entry = config.methods.first(where: { !isEvaluated(link.name, $0.label) && !link.delivered.contains($0.label) }) else { return }
        do {
            let path = spool.mergedDirectory(entry.label) + "/model.safetensors"
            let sender = try ChunkSender(path: path, name: entry.label + ".safetensors")
            link.download = (entry.label, sender)
            try server!.send(.merged(Merged(round: config.round, method: entry.label,
                                            files: [MergedFile(name: sender.offer.name, size: sender.offer.size, sha256: sender.offer.sha256)],
                                            attributes: ["merge_method": entry.choice.name])), to: link.peer)
            try sender.start { try server!.send($0, to: link.peer) }
        } catch {
            logger.error("cannot send merged model", metadata: ["agent": "\(link.name)", "method": "\(entry.label)", "error": "\(error)"])
            link.download = nil
        }
    }

    public static let protocolVersion = 1
}

public enum AggregatorError: Error, CustomStringConvertible {
    case notWelcomed(String, String)
    case unexpected(String, String)
    case unexpectedFile(String, String, [String])
    case wrongRound(String, Int, Int)
    case evalBeforeUpload(String)
    case evalNotDelivered(String, String)
    case badMetrics(String, String)

    public var description: String {
        switch self {
        case let .notWelcomed(agent, type): return "agent \(agent) sent \(type) before HELLO was accepted"
        case let .unexpected(agent, type): return "agent \(agent) sent an unexpected \(type)"
        case let .unexpectedFile(agent, name, required): return "agent \(agent) offered '\(loggable(name, limit: 80))'; this round takes \(required.joined(separator: ", "))"
        case let .wrongRound(agent, got, want): return "agent \(agent) sent an EVAL for round \(got), this is round \(want)"
        case let .evalBeforeUpload(agent): return "agent \(agent) sent an EVAL of its own model before its contribution was committed (no model.safetensors yet)"
        case let .evalNotDelivered(agent, method): return "agent \(agent) sent an EVAL of '\(method)', a merged model it was not sent"
        case let .badMetrics(agent, method): return "agent \(agent) sent an EVAL of '\(loggable(method, limit: 80))' whose metrics are not 1–32 finite values with portable names"
        }
    }
}

/// The plausibility checks run on their own thread (loading and factoring a model's
/// statistics takes seconds) while the event loop keeps serving; verdicts are polled.
final class ContributionChecks: @unchecked Sendable {
    struct Verdict { var agent: String; var reasons: [String]; var distances: String; var seconds: Double }
    private let lock = NSLock()
    private var done: [Verdict] = []
    private let queue = DispatchQueue(label: "fedmerge.contribution-checks")

    func submit(agent: String, directory: String, checker: ContributionCheck) {
        queue.async { [self] in
            let start = DispatchTime.now().uptimeNanoseconds
            let (reasons, distances) = checker.reasons(directory: directory)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            lock.lock(); done.append(Verdict(agent: agent, reasons: reasons, distances: distances, seconds: seconds)); lock.unlock()
        }
    }

    func take() -> Verdict? {
        lock.lock(); defer { lock.unlock() }
        return done.isEmpty ? nil : done.removeFirst()
    }
}

/// The merge thread's result, handed to the event loop.
final class MergeThreadResult: @unchecked Sendable {
    enum Value { case success([RoundMerger.Outcome]), failure(String) }
    private let lock = NSLock()
    private var value: Value?
    func put(_ v: Value) { lock.lock(); value = v; lock.unlock() }
    func take() -> Value? { lock.lock(); defer { value = nil; lock.unlock() }; return value }
}
