// The agent's one transition function: (state, event) → (state, effects). Pure — no clock,
// no disk, no sockets — so tests drive it through scenarios with plain values. Events that
// mean the same in every phase (a lost or refused link, the worker's results) are handled
// first; then one `switch` over the phase.

import DaemonSupport
import Foundation
import Logging
import Protocol

func step(_ state: AgentState, _ event: AgentEvent) -> (AgentState, [AgentEffect]) {
    var transition = AgentTransition()
    let next = transition.handle(state, event)
    return (next, transition.effects)
}

struct AgentTransition {
    var effects: [AgentEffect] = []

    mutating func handle(_ state: AgentState, _ event: AgentEvent) -> AgentState {
        guard var memory = state.memory else { return state }      // finished: nothing more happens
        switch event {
        case .tick(let now):
            memory.now = max(memory.now, now)
        case .linkRefused(let reason):
            log(.error, reason)
            return .finished(.refused)
        case .linkLost(let reason):
            return lost(state, memory, reason: reason)
        case .localFailure(let reason):
            log(.error, reason)
            return .finished(.failure)
        case .evaluated, .evaluationFailed:
            finishEvaluation(event, &memory, admitted: state.isAdmitted)
        case .prepared, .prepareFailed:
            // Also when the link broke meanwhile: the next WELCOME prepares again (from disk).
            if memory.worker == .preparing { memory.worker = .idle }
        case .secureBoundsReady, .secureMasked, .secureFailed:
            if memory.worker == .securing { memory.worker = .idle }
        default:
            break
        }

        // The aggregator gave up the merge this agent serves (a secure merge below min_agents, …):
        // nothing more will come for it, in whatever phase the agent is.
        if case .message(.mergeFailed(let failure)) = event, state.isAdmitted {
            return mergeFailed(failure, state, memory)
        }

        switch state {
        case .finished:
            return state
        case .starting:
            guard case .started = event else { return state.with(memory) }
            effects.append(.connect(after: 0))
            return .connecting(memory, attempt: 0, since: memory.now)

        case .connecting(_, let attempt, let since):
            guard case .linkUp = event else { return state.with(memory) }
            effects.append(.sendHello)
            return .awaitingWelcome(memory, sentAt: memory.now, outage: Outage(attempt: attempt, since: since))

        case .awaitingWelcome(_, let sentAt, _):
            switch event {
            case .tick where memory.now - sentAt > memory.settings.welcomeTimeout:
                return lost(state, memory, reason: "no WELCOME within \(Int(memory.settings.welcomeTimeout)) s of HELLO")
            case .welcome(let welcome, let saved):
                return admit(welcome, saved: saved, memory)
            case .message(.refused(let refused)):
                log(.error, "refused by the aggregator: \(loggable(refused.reason))")
                return .finished(.refused)
            case .message(.heartbeat):
                break
            case .message(let message):
                log(.warning, "ignoring \(message.type) before WELCOME")
            default:
                break
            }
            return state.with(memory)

        case .preparing(_, let uploads):
            switch event {
            case .prepared:
                if let served = memory.served, let plan = served.welcome.secure, !served.welcome.committed.contains(plan.upload) {
                    effects.append(.secureBegin(round: served.round, merge: served.welcome.merge, plan: plan))
                    log(.info, "secure merge: key sent; waiting for every member's key", ["merge": loggable(served.welcome.merge)])
                    return .securing(memory, step: .awaitingKeys)
                }
                guard let first = uploads.first else { return serve(memory) }
                effects.append(.startUpload(file: first))
                return .uploading(memory, file: first, remaining: Array(uploads.dropFirst()))
            case .prepareFailed(let reason):
                log(.error, "preparing the model failed: \(reason)")
                effects.append(.send(.error(ErrorReport(code: "prepare_failed", message: reason))))
                return .finished(.failure)
            default:
                incoming(event, &memory)
                // An evaluation that was running when the link broke finishes first (and is
                // reported); only then may the worker prepare: one job at a time.
                startPreparing(&memory)
                return .preparing(memory, uploads: uploads)
            }

        case .uploading(_, let file, let remaining):
            switch event {
            case .message(let message) where message.isUploadReply:
                effects.append(.feedUpload(message))
            case .uploadCommitted(let committed, let bytes) where committed == file:
                log(.info, "uploaded", ["file": file, "bytes": "\(bytes)"])
                guard let next = remaining.first else { return serve(memory) }
                effects.append(.startUpload(file: next))
                return .uploading(memory, file: next, remaining: Array(remaining.dropFirst()))
            default:
                incoming(event, &memory)       // e.g. a merged model of a merge that went on without us
            }
            return .uploading(memory, file: file, remaining: remaining)

        case .securing(_, let step):
            switch (step, event) {
            case (.awaitingKeys, .message(.secureKeys(let keys))):
                guard memory.worker == .idle else { return secureRefused("SECURE_KEYS while the worker is busy (\(memory.worker))") }
                memory.worker = .securing
                effects.append(.secureKeys(keys))
                return .securing(memory, step: .computing)
            case (.computing, .secureBoundsReady(let bounds)):
                log(.info, "secure merge: every member's key verified against the federation CA; bounds sent", ["summands": "\(bounds.boundExponents.count)"])
                effects.append(.send(.secureBounds(bounds)))
                return .securing(memory, step: .awaitingScale)
            case (.awaitingScale, .message(.secureScale(let scale))):
                guard memory.worker == .idle else { return secureRefused("SECURE_SCALE while the worker is busy (\(memory.worker))") }
                memory.worker = .securing
                effects.append(.secureScale(scale))
                return .securing(memory, step: .masking)
            case (.masking, .secureMasked(let file, let bytes)):
                log(.info, "secure merge: masked upload written", ["file": file, "bytes": "\(bytes)"])
                effects.append(.startUpload(file: file))
                return .uploading(memory, file: file, remaining: [])
            case (_, .secureFailed(let reason)):
                return secureRefused(reason)
            default:
                incoming(event, &memory)
            }
            return .securing(memory, step: step)

        case .serving:
            incoming(event, &memory)
            return settle(memory)

        case .enrolled(_, let nextHello):
            if case .tick = event, memory.now >= nextHello {
                effects.append(.sendHello)
                return .awaitingWelcome(memory, sentAt: memory.now, outage: nil)
            }
            incoming(event, &memory)
            // The aggregator delivers a model again (e.g. one whose evaluation failed): serve it.
            if let served = memory.served, served.download != nil || !served.queue.isEmpty { return settle(memory) }
            return .enrolled(memory, nextHello: nextHello)
        }
    }

    // MARK: the link

    /// The link broke (or could not be made): reconnect after the backoff; `--once` gives up
    /// once `connectTimeout` has passed since the loss (since the start before the first WELCOME).
    private mutating func lost(_ state: AgentState, _ memory: AgentMemory, reason: String) -> AgentState {
        var memory = memory
        let outage: Outage
        switch state {
        case .connecting(_, let attempt, let since): outage = Outage(attempt: attempt, since: since)
        case .awaitingWelcome(_, _, let o?): outage = o
        default: outage = Outage(attempt: 0, since: memory.now)
        }
        memory.served?.download = nil          // its receiver lived on that link
        effects.append(.dropLink)
        let down = memory.now - outage.since
        if memory.settings.once && down >= memory.settings.connectTimeout {
            log(.error, "giving up: no link to the aggregator for \(Int(down)) s (--connect-timeout \(Int(memory.settings.connectTimeout))): \(reason)")
            return .finished(.failure)
        }
        let attempt = outage.attempt + 1
        let wait = ReconnectBackoff.delay(attempt: attempt)
        log(.warning, "link lost (\(reason)); reconnecting in \(String(format: "%.1f", wait)) s")
        effects.append(.connect(after: wait))
        return .connecting(memory, attempt: attempt, since: outage.since)
    }

    // MARK: WELCOME

    private mutating func admit(_ welcome: Welcome, saved: SentEvaluations, _ memory: AgentMemory) -> AgentState {
        var memory = memory
        do { try AggregatorValues.check(welcome) } catch {
            log(.error, "refusing the aggregator's WELCOME: \(error)")
            effects.append(.send(.error(ErrorReport(code: "welcome_refused", message: "\(error)"))))
            return .finished(.failure)
        }
        let previous = memory.served
        // The same merge again (a reconnect): what this run knows is newer than the file.
        let sameRound = previous?.round == welcome.round
        let evaluations = sameRound ? previous?.evaluations ?? saved : saved
        let plan = WelcomePlan.plan(welcome, servedRound: previous?.round, sent: evaluations.metrics,
                                    acknowledged: Set(evaluations.acknowledged), failed: Set(previous?.failed.keys ?? [:].keys),
                                    once: memory.settings.once)
        if sameRound, var served = previous {
            served.welcome = welcome
            memory.served = served
        } else {
            memory.served = ServedMerge(welcome: welcome, evaluations: evaluations)
            if plan.newRound { log(.info, "next merge", ["round": "\(welcome.round)", "merge": loggable(welcome.merge)]) }
        }
        // EVALs whose acknowledgement a broken link swallowed go again (the aggregator is idempotent).
        for eval in plan.resend { effects.append(.send(.eval(eval))) }
        log(.info, "admitted", ["round": "\(welcome.round)", "statistics": welcome.wantedStatistics.map(\.rawValue).joined(separator: ","),
                                "methods": welcome.methods.map { loggable($0) }.joined(separator: ","), "phase": welcome.phase.rawValue])
        // A secure merge the aggregator already gave up: preparing would send a key it refuses.
        if welcome.phase == .failed, welcome.secure != nil {
            return gaveUp(merge: welcome.merge, round: welcome.round, reason: "WELCOME says the merge has failed", memory)
        }
        switch plan.next {
        case .finish:
            return finishRound(memory)
        case .stayEnrolled:
            return .enrolled(memory, nextHello: memory.now + memory.settings.helloInterval)
        case .prepare:
            // Always prepare: it reuses the model and statistics on disk when their inputs
            // match, and the local evaluation needs them even when the aggregator has everything.
            startPreparing(&memory)
            return .preparing(memory, uploads: plan.uploads)
        }
    }

    /// A step of the secure exchange failed: the aggregator is told why (it fails the merge) and the run ends.
    private mutating func secureRefused(_ reason: String) -> AgentState {
        log(.error, "secure merge refused: \(loggable(reason, limit: 1000))")
        effects.append(.send(.error(ErrorReport(code: "secure_refused", message: reason))))
        return .finished(.failure)
    }

    /// MERGE_FAILED for the served merge: logged naming the merge and the reason; the secure
    /// exchange and any upload for it end; `--once` exits 3 (the round failed), an enrolled
    /// agent waits for its next merge (HELLO after the interval). For another merge: ignored.
    private mutating func mergeFailed(_ failure: MergeFailed, _ state: AgentState, _ memory: AgentMemory) -> AgentState {
        guard let served = memory.served, served.round == failure.round, served.welcome.merge == failure.merge else {
            log(.warning, "ignoring MERGE_FAILED for a merge this agent does not serve", ["round": "\(failure.round)", "merge": loggable(failure.merge)])
            return state.with(memory)
        }
        return gaveUp(merge: failure.merge, round: failure.round, reason: failure.reason, memory)
    }

    /// The served merge failed at the aggregator: stop working for it.
    private mutating func gaveUp(merge: String, round: Int, reason: String, _ memory: AgentMemory) -> AgentState {
        log(.error, "merge '\(loggable(merge))' (round \(round)) failed at the aggregator: \(loggable(reason, limit: 1000))", ["merge": loggable(merge), "round": "\(round)"])
        effects.append(.endMerge)
        if memory.settings.once { return .finished(.roundFailed) }
        var memory = memory
        memory.served?.queue = []          // no models will come for it; the own model's score is moot
        memory.served?.download = nil
        log(.info, "waiting for the next merge", ["next_hello_in": "\(Int(memory.settings.helloInterval)) s"])
        return .enrolled(memory, nextHello: memory.now + memory.settings.helloInterval)
    }

    private mutating func startPreparing(_ memory: inout AgentMemory) {
        guard memory.worker == .idle, let served = memory.served else { return }
        memory.worker = .preparing
        effects.append(.prepare(statistics: served.welcome.wantedStatistics))
    }

    // MARK: merged models and evaluations

    /// The contribution is in: queue the agent's own model for evaluation and serve.
    private mutating func serve(_ memory: AgentMemory) -> AgentState {
        var memory = memory
        if var served = memory.served {
            let local = ReservedLabel.local
            let onWorker = memory.worker == .evaluating(round: served.round, .local)
            if served.evaluations.metrics[local] == nil && served.failed[local] == nil && !onWorker && !served.queue.contains(where: { $0.label == local }) {
                served.queue.append(.local)
            }
            memory.served = served
        }
        return settle(memory)
    }

    /// Serving: hand the next model to an idle worker; when every model is settled, the merge is done.
    private mutating func settle(_ memory: AgentMemory) -> AgentState {
        var memory = memory
        guard var served = memory.served else { return .serving(memory) }
        if memory.worker == .idle, !served.queue.isEmpty {
            let next = served.queue.removeFirst()
            memory.worker = .evaluating(round: served.round, next)
            memory.served = served
            effects.append(.evaluate(round: served.round, next))
        }
        guard memory.worker == .idle, served.queue.isEmpty, served.download == nil,
              WelcomePlan.allSettled(methods: served.welcome.methods, acknowledged: Set(served.evaluations.acknowledged),
                                     failed: Set(served.failed.keys)) else { return .serving(memory) }
        return finishRound(memory)
    }

    /// Logs how the served merge ended; `--once` ends the run, an enrolled agent asks for the next merge.
    private mutating func finishRound(_ memory: AgentMemory) -> AgentState {
        let round = memory.served.map { "\($0.round)" } ?? "-"
        let failed = memory.served?.failed ?? [:]
        let exit: DaemonExit
        if failed.isEmpty {
            log(.info, "round complete: every merged model evaluated", ["round": round])
            exit = .success
        } else {
            for (label, reason) in failed.sorted(by: { $0.key < $1.key }) {
                log(.error, "round ended with a failed evaluation of '\(loggable(label))': \(loggable(reason, limit: 1000))")
            }
            log(.error, "round complete, but \(failed.count) evaluation(s) failed: \(failed.keys.sorted().map { loggable($0) }.joined(separator: ", "))", ["round": round])
            exit = .failure
        }
        if memory.settings.once { return .finished(exit) }
        effects.append(.sendHello)
        return .awaitingWelcome(memory, sentAt: memory.now, outage: nil)
    }

    /// Merged-model announcements and their transfers, EVALUATED, heartbeats and error
    /// reports, in any admitted phase. A message that fails the checks is refused with an
    /// ERROR naming the value and touches no disk.
    private mutating func incoming(_ event: AgentEvent, _ memory: inout AgentMemory) {
        guard var served = memory.served else { return }
        defer { memory.served = served }
        switch event {
        case .message(.merged(let merged)):
            served.download = nil
            let file: MergedFile
            do { file = try AggregatorValues.check(merged, welcome: served.welcome, ownModelBytes: memory.settings.baseModelBytes) } catch {
                refuse("\(error)")
                return
            }
            served.download = IncomingModel(label: merged.method, headsPrefix: merged.headsPrefix, file: file)
            served.failed[merged.method] = nil     // delivered again: try again
            log(.info, "merged model announced", ["method": merged.method, "bytes": "\(file.size)"])
            if let metrics = served.evaluations.metrics[merged.method], served.evaluations.weightsScored(merged.method) == file.sha256 {
                // These very weights were scored: the aggregator lacks the EVAL, not the model.
                log(.info, "these merged weights were evaluated before; sending their EVAL again", ["method": merged.method])
                effects.append(.send(.eval(Eval(round: served.round, method: merged.method, metrics: metrics))))
            }
            effects.append(.openDownload(round: served.round, file: file))
        case .message(let message) where message.isDownloadPart:
            guard let download = served.download else { return refuse("\(AggregatorValueError.noDownload(message.type))") }
            if case .offer(let offer) = message,
               offer.name != download.file.name || offer.size != download.file.size || offer.sha256 != download.file.sha256 {
                return refuse("\(AggregatorValueError.offerMismatch(name: offer.name, announced: download.file.name))")
            }
            effects.append(.feedDownload(message))
        case .downloadCompleted(let path):
            guard let download = served.download else { return }
            served.download = nil
            log(.info, "merged model received", ["method": download.label, "bytes": "\(download.file.size)", "sha256": String(download.file.sha256.prefix(12))])
            let label = download.label
            if served.evaluations.metrics[label] != nil && served.evaluations.weightsScored(label) == download.file.sha256 { return }
            served.queue.removeAll { $0.label == label }
            served.queue.append(PendingEvaluation(label: label, weights: path, headsPrefix: download.headsPrefix, sha256: download.file.sha256))
        case .downloadRefused(let reason, let report):
            log(.warning, "merged model transfer refused: \(loggable(reason))")
            effects.append(.send(report))
        case .message(.evaluated(let ack)):
            guard ack.round == served.round, served.evaluations.metrics[ack.method] != nil else {
                log(.warning, "ignoring EVALUATED for a model this agent did not report", ["round": "\(ack.round)", "method": loggable(ack.method)])
                return
            }
            served.evaluations.acknowledge(ack.method)
            effects.append(.saveEvaluations(round: served.round, served.evaluations))
        case .message(.heartbeat):
            break
        case .message(.revealRequest(let request)):
            // A secure merge lost members after the scale: the shell's SecureExchange reveals
            // the seeds shared with them, or refuses (see there for what a lying aggregator gains).
            log(.warning, "the aggregator reports members dropped from the secure merge; revealing the seeds shared with them",
                ["dropped": request.dropped.map { loggable($0) }.joined(separator: ",")])
            effects.append(.secureReveal(request))
        case .message(.error(let report)):
            log(.warning, "aggregator reported an error: \(loggable(report.code)): \(loggable(report.message))")
        case .message(let message):
            log(.warning, "ignoring an unexpected \(message.type)")
        case .welcome:
            log(.warning, "ignoring an unexpected WELCOME (this agent sent no HELLO)")
        default:
            break
        }
    }

    /// A worker result: record and report the EVAL, or the failure. Before admission nothing
    /// is sent: the EVAL goes with the next WELCOME's re-sends.
    private mutating func finishEvaluation(_ event: AgentEvent, _ memory: inout AgentMemory, admitted: Bool) {
        guard case .evaluating(let round, let job) = memory.worker else { return }
        memory.worker = .idle
        guard var served = memory.served, served.round == round else {
            log(.warning, "dropping the evaluation of '\(loggable(job.label))' for round \(round): the agent serves another merge now")
            return
        }
        defer { memory.served = served }
        switch event {
        case .evaluated(_, let label, let metrics):
            if let bad = metrics.sorted(by: { $0.key < $1.key }).first(where: { !$0.value.isFinite }) {
                fail(label, because: "the metric '\(bad.key)' is \(bad.value)", &served, admitted: admitted)
                return
            }
            served.evaluations.metrics[label] = metrics
            served.evaluations.acknowledged.removeAll { $0 == label }     // new metrics need their own EVALUATED
            if let sha = job.sha256 { served.evaluations.weights = (served.evaluations.weights ?? [:]).merging([label: sha]) { $1 } }
            effects.append(.saveEvaluations(round: round, served.evaluations))
            if admitted { effects.append(.send(.eval(Eval(round: round, method: label, metrics: metrics)))) }
            log(.info, "evaluated", ["model": label, "metrics": metrics.keys.sorted().map { "\($0)=\(String(format: "%.4f", metrics[$0] ?? .nan))" }.joined(separator: " ")])
        case .evaluationFailed(_, let label, let reason):
            fail(label, because: reason, &served, admitted: admitted)
        default:
            break
        }
    }

    /// A model this agent cannot evaluate: reported (ERROR eval_failed naming it) and settled,
    /// so the agent does not wait for an acknowledgement that will never come.
    private mutating func fail(_ label: String, because reason: String, _ served: inout ServedMerge, admitted: Bool) {
        served.failed[label] = reason
        log(.error, "evaluation of '\(loggable(label))' failed: \(loggable(reason, limit: 1000))")
        if admitted { effects.append(.send(.error(ErrorReport(code: "eval_failed", message: reason, method: label)))) }
    }

    /// Tells the aggregator (and the log) why a message was refused; `why` escapes what the peer chose.
    private mutating func refuse(_ why: String) {
        log(.error, why)
        effects.append(.send(.error(ErrorReport(code: "merged_refused", message: why))))
    }

    private mutating func log(_ level: Logger.Level, _ message: String, _ metadata: [String: String] = [:]) {
        effects.append(.log(LogLine(level, message, metadata)))
    }
}

extension Message {
    /// The receiver's replies to this agent's upload.
    var isUploadReply: Bool {
        switch self {
        case .resume, .ack, .committed: true
        default: false
        }
    }

    /// A merged model's transfer from the aggregator.
    var isDownloadPart: Bool {
        switch self {
        case .offer, .chunk, .commit: true
        default: false
        }
    }
}
