// The aggregator daemon: admits agents, spools their uploads, merges once the subset 𝒦 is
// in (or at the deadline with a quorum), sends every merged model back, collects EVALs and
// writes the report. A thin state machine over Protocol (wire) and Merge (arithmetic).
//
// Round phases (one `switch` each in `advance()`):
//   collecting → merging → distributing → finished
//        └──── failed (deadline passed without min_agents; the spool is kept)
// Per-agent downloads of merged models: one ChunkSender at a time, methods in config order.

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
    private var logger: Logger
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
    private let mergeResult = MergeThreadResult()

    public init(config: AggregatorConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.logger[metadataKey: "round"] = "\(config.round)"
        spool = try RoundSpool(spoolRoot: config.spool, outputRoot: config.output, round: config.round)
        required = RoundSpool.requiredFiles(needStatistics: !config.wantedStatistics.isEmpty)
        evaluations = spool.loadEvaluations()
    }

    /// The endpoint actually bound (meaningful after `run` has started; tests bind port 0).
    public private(set) var boundEndpoint: String?

    /// Serves until the round is finished, failed, or a stop signal arrives.
    public func run() throws -> DaemonExit {
        baseFingerprint = try ModelFingerprint.of(directory: config.baseModel)
        let allow = Set(config.allow)
        let server = try SecureServer(endpoint: config.listen, tls: config.tls, allow: { allow.contains($0) }, logger: logger)
        self.server = server
        boundEndpoint = server.endpoint
        defer { server.close() }
        let done = config.subset.filter { spool.isComplete($0, required: required) }
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
            case .finished: return .success
            case .failed(let why):
                logger.error("round failed: \(why)")
                return .roundFailed
            default: continue
            }
        }
    }

    /// After a restart: merged outputs already on disk mean the merge is done.
    private func resumeFromDisk() -> String? {
        let complete = config.subset.filter { spool.isComplete($0, required: required) }
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
            let complete = config.subset.filter { spool.isComplete($0, required: required) }
            if complete.count == config.subset.count {
                startMerge(complete)
            } else if Date().timeIntervalSince(startedAt) >= config.deadline {
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

    private func allEvaluated(_ agent: String) -> Bool {
        let got = evaluations[agent] ?? [:]
        return got["local"] != nil && config.methods.allSatisfy { got[$0.label] != nil }
    }

    private func finish(missing: [String]) {
        do {
            let report = RoundReport(config: config, merged: merged, absent: config.subset.filter { !merged.contains($0) },
                                     evaluations: evaluations, outcomes: mergeOutcomes, missingEvaluations: missing)
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
                logger.info("agent disconnected", metadata: ["agent": "\(link.name)", "reason": "\(reason)"])
            }
        case .message(let peer, let message):
            guard let link = links[peer] else { return }
            do { try handle(message, from: link) } catch {
                logger.error("dropping agent after a protocol error", metadata: ["agent": "\(link.name)", "error": "\(error)"])
                if let report = (error as? TransferError)?.report { try? server?.send(report, to: peer) }
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
                link.download = nil
                sendNextDownload(link)
            }
        case .eval(let eval):
            guard eval.round == config.round else { throw AggregatorError.wrongRound(link.name, eval.round, config.round) }
            evaluations[link.name, default: [:]][eval.method] = eval.metrics
            try spool.saveEvaluations(evaluations)
            logger.info("evaluation received", metadata: ["agent": "\(link.name)", "method": "\(eval.method)",
                                                         "metrics": "\(eval.metrics.keys.sorted().map { "\($0)=\(String(format: "%.4f", eval.metrics[$0]!))" }.joined(separator: " "))"])
        case .error(let report):
            logger.warning("agent reported an error", metadata: ["agent": "\(link.name)", "code": "\(report.code)", "message": "\(report.message)"])
        case .heartbeat:
            break
        default:
            throw AggregatorError.unexpected(link.name, message.type.description)
        }
    }

    /// HELLO: same certificate name, same base model, member of 𝒦, right round.
    private func admit(_ hello: Hello, _ link: AgentLink) throws {
        let refusal: String?
        if hello.name != link.name {
            refusal = "HELLO names '\(hello.name)' but the certificate is '\(link.name)'"
        } else if hello.protocolVersion != AggregatorDaemon.protocolVersion {
            refusal = "protocol version \(hello.protocolVersion) is not supported (aggregator speaks \(AggregatorDaemon.protocolVersion))"
        } else if hello.baseFingerprint != baseFingerprint {
            refusal = "different base model: fingerprint \(hello.baseFingerprint.prefix(12))… ≠ the round's \(baseFingerprint.prefix(12))… (\(config.baseModel))"
        } else if !config.subset.contains(hello.name) {
            refusal = "'\(hello.name)' is not in this round's subset 𝒦 (\(config.subset.joined(separator: ", ")))"
        } else if let round = hello.round, round != config.round {
            refusal = "round \(round) requested, this aggregator runs round \(config.round)"
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
        link.receiver = try ChunkReceiver(spool: spool.agentDirectory(link.name), logger: agentLogger)
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
            if have.count == required.count {
                let all = config.subset.filter { spool.isComplete($0, required: required) }
                logger.info("agent upload complete", metadata: ["agent": "\(link.name)", "agents_complete": "\(all.count)/\(config.subset.count)"])
            }
        }
    }

    /// Starts sending the next merged model this agent has not evaluated yet.
    private func sendNextDownload(_ link: AgentLink) {
        guard link.download == nil, phase == .distributing else { return }
        let got = evaluations[link.name] ?? [:]
        guard let entry = config.methods.first(where: { got[$0.label] == nil && !link.delivered.contains($0.label) }) else { return }
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

    public var description: String {
        switch self {
        case let .notWelcomed(agent, type): return "agent \(agent) sent \(type) before HELLO was accepted"
        case let .unexpected(agent, type): return "agent \(agent) sent an unexpected \(type)"
        case let .unexpectedFile(agent, name, required): return "agent \(agent) offered '\(name)'; this round takes \(required.joined(separator: ", "))"
        case let .wrongRound(agent, got, want): return "agent \(agent) sent an EVAL for round \(got), this is round \(want)"
        }
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
