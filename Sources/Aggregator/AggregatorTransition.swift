// The aggregator's one transition function: (state, event) → (state, effects). Pure — no
// clock, no disk, no sockets — so tests drive it through scenarios with plain values.
// Every event is handled, then `reconcile` moves each merge and link as far as the new
// state allows (level-triggered: the same state always yields the same next moves).

import DaemonSupport
import Foundation
import Protocol
import SecureSum

/// Contribution files: config.json and the weights, plus statistics when a merge needs any.
public func contributionFiles(needStatistics: Bool) -> [String] {
    needStatistics ? ["config.json", "model.safetensors", "stats.safetensors"] : ["config.json", "model.safetensors"]
}

public func step(_ state: AggregatorState, _ event: AggregatorEvent) -> (AggregatorState, [AggregatorEffect]) {
    var next = state
    var effects: [AggregatorEffect] = []
    next.handle(event, &effects)
    next.reconcile(&effects)
    return (next, effects)
}

extension AggregatorState {
    // MARK: queries

    /// Merges `agent` contributes to (𝒦) or receives models of (audience), by id.
    func mergesInvolving(_ agent: String) -> [MergeState] {
        merges.values.filter { $0.definition.subset.contains(agent) || ($0.definition.audience ?? []).contains(agent) }
            .sorted { $0.definition.id < $1.definition.id }
    }

    /// The statistics `agent` must send: what every clear merge it contributes to needs (a
    /// secure merge never receives them: the agent computes its summands itself).
    func neededKinds(_ agent: String) -> Set<StatisticKind> {
        merges.values.filter { !$0.definition.secure && $0.definition.subset.contains(agent) }.reduce(into: Set<StatisticKind>()) { $0.formUnion($1.definition.kinds) }
    }

    /// The files of `agent`'s contribution; none for an agent that only receives models
    /// (audience) or contributes to secure merges only.
    func requiredFiles(_ agent: String) -> [String] {
        guard merges.values.contains(where: { !$0.definition.secure && $0.definition.subset.contains(agent) }) else { return [] }
        return contributionFiles(needStatistics: !neededKinds(agent).isEmpty)
    }

    /// Members of 𝒦 that can still be merged: not forgotten, not quarantined.
    func active(_ merge: MergeState) -> [String] {
        merge.definition.subset.filter { !forgotten.contains($0) && agents[$0]?.quarantine == nil }
    }

    /// The fingerprint `agent` would be merged with under `merge`, when it is ready.
    func readyFingerprint(_ agent: String, for merge: MergeState) -> String? {
        guard !forgotten.contains(agent), let record = agents[agent], record.quarantine == nil,
              let fp = record.current, let c = record.contributions[fp], c.verdict == .passed else { return nil }
        let files = contributionFiles(needStatistics: !merge.definition.kinds.isEmpty)
        guard files.allSatisfy(c.files.contains), merge.definition.kinds.isSubset(of: c.kinds) else { return nil }
        return fp
    }

    /// Who evaluates a merge's models: its audience, or the merged agents.
    func audience(_ merge: MergeState) -> [String] {
        (merge.definition.audience ?? merge.phase.members.keys.sorted()).filter { !forgotten.contains($0) }
    }

    /// Every model `agent` should score for `merge` is scored or reported failed.
    func allEvaluated(_ agent: String, _ merge: MergeState) -> Bool {
        let own = merge.phase.members[agent] != nil ? [ReservedLabel.local] : []
        return (own + merge.definition.methods.map(\.label)).allSatisfy { merge.ledger.isEvaluated(agent, $0) }
    }

    /// Fingerprints a merge thread may be reading right now.
    func pinned(_ agent: String) -> Set<String> {
        Set(merges.values.compactMap { if case .merging(let m, _) = $0.phase { m[agent] } else { nil } })
    }

    /// The merge a link should serve: the first (by id) with work left for this agent, else the latest.
    func servingMerge(for agent: String) -> MergeState? {
        let involved = mergesInvolving(agent)
        let pending = involved.first { merge in
            switch merge.phase {
            case .waiting, .merging: return true      // it contributes, or receives the models soon
            case .distributing, .finished: return audience(merge).contains(agent) && !allEvaluated(agent, merge)
            case .failed: return false
            }
        }
        return pending ?? involved.last
    }

    // MARK: events

    mutating func handle(_ event: AggregatorEvent, _ effects: inout [AggregatorEffect]) {
        switch event {
        case .tick(let now):
            self.now = max(self.now, now)
        case .definitions(let definitions):
            define(definitions, &effects)
        case .connected(let peer, let name):
            links[peer] = Link(agent: name, phase: .awaitingHello)
            agents[name, default: AgentRecord()].lastSeen = now
            effects.append(.log(LogLine(.info, "agent connected (TLS ok)", ["agent": name])))
        case .connectionRefused(let reason):
            counters.refusals["tls", default: 0] += 1
            effects.append(.log(LogLine(.warning, "connection refused", ["reason": reason])))
        case .disconnected(let peer, let reason, let superseded):
            guard let link = links.removeValue(forKey: peer) else { return }
            if superseded {
                // Two live processes with one certificate fight over one identity; say so loudly.
                effects.append(.log(LogLine(.warning, "agent reconnected from a new link, replacing the old one; if this repeats, two processes share certificate '\(link.agent)'",
                                            ["agent": link.agent, "reason": reason])))
            } else {
                effects.append(.log(LogLine(.info, "agent disconnected", ["agent": link.agent, "reason": reason])))
            }
        case .message(let peer, let message):
            guard let link = links[peer] else { return }
            agents[link.agent, default: AgentRecord()].lastSeen = now
            do { try receive(message, from: peer, link, &effects) } catch {
                drop(peer, error: "\(error)", report: .error(ErrorReport(code: "protocol", message: "\(error)")), &effects)
            }
        case .uploadCommitted(let peer, let file, let bytes, let kinds):
            committed(file, bytes: bytes, kinds: kinds, peer, &effects)
        case .downloadDelivered(let peer, let bytes):
            delivered(peer, bytes: bytes, &effects)
        case .linkFailed(let peer, let error, let report):
            drop(peer, error: error, report: report, &effects)
        case .checked(let agent, let fingerprint, let reasons, let distances):
            guard agents[agent]?.contributions[fingerprint] != nil else { return }
            if reasons.isEmpty {
                agents[agent]!.contributions[fingerprint]!.verdict = .passed
                agents[agent]!.current = fingerprint
                effects.append(.markChecked(agent: agent, fingerprint: fingerprint))
                effects.append(.log(LogLine(.info, "contribution passed the plausibility checks",
                                            ["agent": agent, "fingerprint": String(fingerprint.prefix(12)), "distance_from_base": distances])))
            } else {
                quarantine(agent, fingerprint, reasons: reasons.map { loggable($0, limit: 400) }, &effects)
            }
        case .mergeDone(let name, let generation, let seconds):
            guard var merge = merges[name], merge.generation == generation, case .merging(let members, _) = merge.phase else { return }
            for (label, s) in seconds { counters.mergeSeconds[name + "/" + label] = s }
            merge.phase = .distributing(members: members, since: now)
            merges[name] = merge
            effects.append(.saveRecord(merge.record))
            effects.append(.log(LogLine(.info, "merged; sending the models to the audience", ["merge": name, "agents": members.keys.sorted().joined(separator: ",")])))
        case .mergeFailed(let name, let generation, let reason):
            guard var merge = merges[name], merge.generation == generation, case .merging = merge.phase else { return }
            merge.phase = .failed(reason: "merge failed: \(reason)")
            merges[name] = merge
            effects.append(.saveRecord(merge.record))
            effects.append(.log(LogLine(.error, "merge failed", ["merge": name, "error": loggable(reason, limit: 400)])))
            announceFailure(merge, reason: "merge failed: \(loggable(reason, limit: 400))", &effects)
        case .forget(let agent):
            forget(agent, &effects)
        }
    }

    /// New, changed and removed merge files.
    mutating func define(_ definitions: [MergeDefinition], _ effects: inout [AggregatorEffect]) {
        let names = Set(definitions.map(\.name))
        for name in merges.keys.sorted() where !names.contains(name) {
            let merge = merges.removeValue(forKey: name)!
            records[name] = merge.record
            ledgers[name] = merge.ledger
            effects.append(.log(LogLine(.notice, "merge file removed; its outputs stay", ["merge": name])))
        }
        for definition in definitions {
            let name = definition.name
            if var merge = merges[name] {
                if merge.definition.digest == definition.digest {
                    merge.definition = definition     // deadlines, min_agents, … apply at once
                    merges[name] = merge
                } else {
                    effects.append(.log(LogLine(.notice, "merge file changed; merging again", ["merge": name])))
                    restart(name, definition: definition, generation: merge.generation + 1, &effects)
                }
                continue
            }
            if let record = records.removeValue(forKey: name) {
                let ledger = ledgers.removeValue(forKey: name) ?? MergeLedger()
                if record.digest == definition.digest {
                    merges[name] = MergeState(definition: definition, generation: record.generation, phase: resumed(record), ledger: ledger)
                    if case .merging(let members, _) = merges[name]!.phase {
                        effects.append(.startMerge(definition, generation: record.generation, members: members, fresh: false))
                    }
                    effects.append(.log(LogLine(.info, "merge resumed from disk", ["merge": name, "phase": record.phase.rawValue])))
                    continue
                }
                effects.append(.log(LogLine(.notice, "merge definition differs from the one merged before; merging again", ["merge": name])))
                restart(name, definition: definition, generation: record.generation + 1, &effects)
                continue
            }
            effects.append(.log(LogLine(.info, "new merge", ["merge": name, "subset": definition.subset.joined(separator: ","),
                                                             "methods": definition.methods.map(\.label).joined(separator: ",")])))
            restart(name, definition: definition, generation: 0, &effects)
        }
        if once == .awaitingDefinitions { once = .merges(names) }
    }

    private func resumed(_ record: MergeRecord) -> MergePhaseState {
        switch record.phase {
        case .merging: .merging(members: record.members, since: now)
        case .distributing: .distributing(members: record.members, since: now)
        case .finished: .finished(members: record.members)
        case .collecting, .failed: .waiting(since: now)
        }
    }

    /// (Re)starts a merge from its definition: waiting, with an empty ledger — except each earlier
    /// member's EVAL of its own model (`local`) while that member's contribution is unchanged: the
    /// model it scored is the same, and the agent, which keeps its acknowledgements per merge id,
    /// would not send it again (the merge would wait for it until eval_timeout).
    private mutating func restart(_ name: String, definition: MergeDefinition, generation: Int, _ effects: inout [AggregatorEffect]) {
        var ledger = MergeLedger()
        if let previous = merges[name] {
            for (agent, fingerprint) in previous.phase.members where agents[agent]?.current == fingerprint && !forgotten.contains(agent) {
                if let own = previous.ledger.evaluations[agent]?[ReservedLabel.local] { ledger.evaluations[agent, default: [:]][ReservedLabel.local] = own }
            }
        }
        let merge = MergeState(definition: definition, generation: generation, phase: .waiting(since: now), ledger: ledger)
        merges[name] = merge
        effects.append(.saveRecord(merge.record))
        effects.append(.saveLedger(merge: name, merge.ledger))
    }

    private mutating func receive(_ message: Message, from peer: PeerID, _ link: Link, _ effects: inout [AggregatorEffect]) throws {
        if case .hello(let hello) = message { return admit(hello, peer, link, &effects) }
        guard case .welcomed(_, _, let download) = link.phase else {
            if case .heartbeat = message { return }
            throw AggregatorError.notWelcomed(link.agent, message.type.description)
        }
        switch message {
        case .offer(let offer):
            if let merge = secureMerge(of: link), offer.name == SecurePlan.uploadName(merge: merge.definition.name) {
                effects.append(.receiveUpload(peer, message))
                return
            }
            let required = requiredFiles(link.agent)
            guard required.contains(offer.name) else { throw AggregatorError.unexpectedFile(link.agent, offer.name, required) }
            effects.append(.receiveUpload(peer, message))
        case .secureKey(let key):
            guard let merge = secureMerge(of: link), case .waiting = merge.phase else { throw AggregatorError.unexpected(link.agent, message.type.description) }
            let name = merge.definition.name
            guard key.agent == link.agent, key.merge == name, key.round == merge.definition.id else {
                throw AggregatorError.secureMismatch(link.agent, "SECURE_KEY for agent '\(loggable(key.agent, limit: 80))', round \(key.round), merge '\(loggable(key.merge, limit: 80))'; expected '\(link.agent)', \(merge.definition.id), '\(name)'")
            }
            if merge.secure.relayed == nil {
                merges[name]!.secure.keys[link.agent] = key
                effects.append(.log(LogLine(.info, "secure merge: key received", ["merge": name, "agent": link.agent,
                                                                                  "keys": "\(merges[name]!.secure.keys.count)/\(active(merge).count)"])))
            } else if merge.secure.keys[link.agent] != key {
                // The keys went out: a new key (a restarted agent) cannot join this exchange.
                effects.append(.log(LogLine(.warning, "secure merge: a new key after the key exchange is ignored; the agent's earlier masks stand",
                                            ["merge": name, "agent": link.agent])))
            }
        case .secureBounds(let bounds):
            guard let merge = secureMerge(of: link), case .waiting = merge.phase, merge.secure.relayed?.contains(link.agent) == true, merge.secure.scale == nil else {
                throw AggregatorError.unexpected(link.agent, message.type.description)
            }
            guard bounds.round == merge.definition.id, bounds.merge == merge.definition.name else {
                throw AggregatorError.secureMismatch(link.agent, "SECURE_BOUNDS for round \(bounds.round), merge '\(loggable(bounds.merge, limit: 80))'")
            }
            merges[merge.definition.name]!.secure.bounds[link.agent] = bounds
        case .reveal(let reveal):
            guard let merge = secureMerge(of: link), case .waiting = merge.phase, let requested = merge.secure.revealRequested,
                  merge.secure.masked[link.agent] != nil else { throw AggregatorError.unexpected(link.agent, message.type.description) }
            guard reveal.agent == link.agent, reveal.round == merge.definition.id, reveal.merge == merge.definition.name,
                  Set(reveal.seeds.keys) == Set(requested) else {
                throw AggregatorError.secureMismatch(link.agent, "REVEAL of seeds with \(reveal.seeds.keys.sorted().map { loggable($0, limit: 80) }.joined(separator: ", ")); asked for \(requested.joined(separator: ", "))")
            }
            merges[merge.definition.name]!.secure.reveals[link.agent] = reveal.seeds
            effects.append(.log(LogLine(.info, "secure merge: seeds revealed", ["merge": merge.definition.name, "agent": link.agent])))
        case .chunk(_, let payload):
            counters.bytesIn += UInt64(payload.count)
            effects.append(.receiveUpload(peer, message))
        case .commit:
            effects.append(.receiveUpload(peer, message))
        case .resume, .ack, .committed:
            guard download != nil else { throw AggregatorError.unexpected(link.agent, message.type.description) }
            effects.append(.forwardDownload(peer, message))
        case .eval(let eval):
            try record(eval, peer, link, &effects)
        case .error(let report):
            effects.append(.log(LogLine(.warning, "agent reported an error", ["agent": link.agent, "code": loggable(report.code),
                                                                             "method": loggable(report.method ?? "-"), "message": loggable(report.message, limit: 400)])))
            // A member refused the secure exchange (a relayed key did not verify, the scale was
            // wrong): it will not upload, and waiting for the deadline would change nothing.
            if report.code == "secure_refused", let merge = secureMerge(of: link), case .waiting = merge.phase {
                let name = merge.definition.name
                let reason = "secure merge refused by \(link.agent): \(loggable(report.message, limit: 400)). The masked uploads stay in the spool's secure/\(name)/."
                merges[name]!.phase = .failed(reason: reason)
                effects.append(.saveRecord(merges[name]!.record))
                effects.append(.log(LogLine(.error, "merge failed", ["merge": name, "reason": reason])))
                announceFailure(merges[name]!, reason: reason, &effects)
            }
            if report.code == "eval_failed", let method = report.method {
                let name = try mayEvaluate(method, link.agent, round: nil)
                if !merges[name]!.ledger.isEvaluated(link.agent, method) {
                    merges[name]!.ledger.failures[link.agent, default: [:]][method] = loggable(report.message, limit: 400)
                    effects.append(.saveLedger(merge: name, merges[name]!.ledger))
                }
            }
        case .heartbeat:
            break
        default:
            throw AggregatorError.unexpected(link.agent, message.type.description)
        }
    }

    /// HELLO: same certificate name, protocol, base model (or any, with `align`), a member of some merge, not
    /// forgotten or quarantined. A second HELLO on a welcomed link asks for the next merge.
    private mutating func admit(_ hello: Hello, _ peer: PeerID, _ link: Link, _ effects: inout [AggregatorEffect]) {
        let agent = link.agent
        let involved = mergesInvolving(agent)
        var refusal: (kind: String, text: String)?
        if hello.name != agent {
            refusal = ("name", "HELLO names '\(loggable(hello.name, limit: 80))' but the certificate is '\(agent)'")
        } else if hello.protocolVersion != Int(ProtocolVersion.current) {
            refusal = ("protocol", "protocol version \(hello.protocolVersion) is not supported (aggregator speaks \(ProtocolVersion.current))")
        } else if hello.baseFingerprint != baseFingerprint && !admitsOtherBases {
            refusal = ("base_model", "different base model: fingerprint \(loggable(String(hello.baseFingerprint.prefix(12))))… ≠ the aggregator's \(baseFingerprint.prefix(12))… (\(baseModel))")
        } else if forgotten.contains(agent) {
            refusal = ("forgotten", "'\(agent)' was forgotten by the operator (`fedmerge aggregator forget`); remove it from forgotten.json in the spool to let it contribute again")
        } else if involved.isEmpty {
            let known = merges.values.sorted { $0.definition.id < $1.definition.id }.map { "\($0.definition.name): \($0.definition.subset.joined(separator: ", "))" }
            refusal = ("not_member", "'\(agent)' is not in this round's subset 𝒦 nor any merge's audience (\(known.joined(separator: "; ")))")
        } else if let round = hello.round, !involved.contains(where: { $0.definition.id == round }) {
            refusal = ("round", "round \(round) requested; '\(agent)' takes part in rounds \(involved.map { "\($0.definition.id)" }.joined(separator: ", "))")
        } else if let reasons = agents[agent]?.quarantine {
            refusal = ("quarantined", "this agent's contribution is quarantined (\(reasons.joined(separator: "; "))); the operator must remove the spool's store/.quarantine/\(agent) to let it upload again")
        } else if let fp = hello.contribution, !ContributionFingerprint.isValid(fp) {
            refusal = ("fingerprint", "contribution fingerprint '\(loggable(fp, limit: 80))' is not 64 lowercase hex digits")
        }
        if let refusal {
            counters.refusals[refusal.kind, default: 0] += 1
            effects.append(.log(LogLine(.warning, "agent refused", ["agent": agent, "reason": refusal.text])))
            effects.append(.send(peer, .refused(Refused(reason: refusal.text))))
            effects.append(.disconnect(peer))
            links[peer] = nil
            return
        }
        let fingerprint = hello.contribution ?? ContributionFingerprint.unversioned
        let otherBase = hello.baseFingerprint == baseFingerprint ? nil : hello.baseFingerprint
        if otherBase != nil || agents[agent]?.otherBase != nil { agents[agent, default: AgentRecord()].otherBase = otherBase }
        if let otherBase {
            effects.append(.log(LogLine(.info, "agent admitted with a different base model; it is aligned to the reference before merging",
                                        ["agent": agent, "base_fingerprint": String(loggable(otherBase, limit: 64).prefix(12))])))
        }
        let serving = (hello.round.flatMap { round in involved.first { $0.definition.id == round } } ?? servingMerge(for: agent))!
        let required = requiredFiles(agent)
        let committed = required.filter { agents[agent]?.contributions[fingerprint]?.files.contains($0) ?? false }
        let memberships = involved.map { MergeMembership(round: $0.definition.id, name: $0.definition.name, methods: $0.definition.methods.map(\.label),
                                                         contributes: $0.definition.subset.contains(agent)) }
        links[peer]!.phase = .welcomed(fingerprint: fingerprint, serving: serving.definition.name, download: nil)
        // A member of a secure merge uploads its masked summands, outside the clear store; the
        // statistics its summands need it computes but never sends.
        let secureMember = serving.definition.secure && serving.definition.subset.contains(agent)
        var wanted = neededKinds(agent)
        var plan: SecurePlan?
        var committedNow = committed
        if secureMember {
            wanted.formUnion(serving.definition.kinds)
            plan = SecurePlan(methods: serving.definition.methods.map { entry in
                let text = (try? JSONEncoder().encode(entry.choice.rawParameters)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                return SecurePlan.Method(label: entry.label, mergeMethod: entry.choice.name, parameters: text)
            }, upload: SecurePlan.uploadName(merge: serving.definition.name))
            if serving.secure.masked[agent] != nil { committedNow.append(plan!.upload) }
            effects.append(.openMaskedUpload(peer, agent: agent, merge: serving.definition.name, generation: serving.generation))
        } else {
            effects.append(.openUpload(peer, agent: agent, fingerprint: fingerprint))
        }
        effects.append(.send(peer, .welcome(Welcome(round: serving.definition.id, merge: serving.definition.name,
                                                    wantedStatistics: wanted.sorted(), methods: serving.definition.methods.map(\.label),
                                                    required: required, committed: committedNow, phase: serving.phase.name,
                                                    merges: [memberships.first { $0.name == serving.definition.name }!] + memberships.filter { $0.name != serving.definition.name },
                                                    secure: plan))))
        effects.append(.log(LogLine(.info, "agent admitted", ["agent": agent, "merge": serving.definition.name,
                                                              "fingerprint": String(fingerprint.prefix(12)), "committed_files": "\(committed.count)/\(required.count)"])))
    }

    private mutating func committed(_ file: String, bytes: UInt64, kinds: Set<StatisticKind>, _ peer: PeerID, _ effects: inout [AggregatorEffect]) {
        guard let link = links[peer], case .welcomed(let fp, _, _) = link.phase else { return }
        let agent = link.agent
        if let merge = secureMerge(of: link), file == SecurePlan.uploadName(merge: merge.definition.name) {
            merges[merge.definition.name]!.secure.masked[agent] = bytes
            effects.append(.log(LogLine(.info, "secure merge: masked upload committed", ["merge": merge.definition.name, "agent": agent, "bytes": "\(bytes)"])))
            return
        }
        var c = agents[agent, default: AgentRecord()].contributions[fp] ?? StoredContribution()
        c.files.insert(file)
        c.bytes += bytes
        if file == "stats.safetensors" { c.kinds = kinds }
        agents[agent]!.contributions[fp] = c
        let required = requiredFiles(agent)
        effects.append(.log(LogLine(.info, "upload committed", ["agent": agent, "file": file, "bytes": "\(bytes)",
                                                                "files": "\(required.filter(c.files.contains).count)/\(required.count)"])))
        guard required.allSatisfy(c.files.contains), c.verdict == .unchecked else { return }
        let lacking = neededKinds(agent).subtracting(c.kinds)
        if !lacking.isEmpty {
            quarantine(agent, fp, reasons: ["stats.safetensors lacks the \(lacking.sorted().map(\.rawValue).joined(separator: ", ")) statistics this round's methods need (WELCOME asked for them)"], &effects)
            return
        }
        agents[agent]!.contributions[fp]!.verdict = .checking
        effects.append(.log(LogLine(.info, "agent upload complete; checking it", ["agent": agent])))
        effects.append(.check(agent: agent, fingerprint: fp))
    }

    private mutating func delivered(_ peer: PeerID, bytes: UInt64, _ effects: inout [AggregatorEffect]) {
        guard var link = links[peer], case .welcomed(let fp, let serving, let download?) = link.phase else { return }
        counters.bytesOut += bytes
        link.delivered[download.merge, default: []].insert(download.label)
        link.phase = .welcomed(fingerprint: fp, serving: serving, download: nil)
        links[peer] = link
        effects.append(.log(LogLine(.info, "merged model delivered", ["agent": link.agent, "merge": download.merge, "method": download.label, "bytes": "\(bytes)"])))
        guard var merge = merges[download.merge] else { return }
        if !(merge.ledger.delivered[link.agent] ?? []).contains(download.label) {
            merge.ledger.delivered[link.agent, default: []].append(download.label)
            merges[download.merge] = merge
            effects.append(.saveLedger(merge: download.merge, merge.ledger))
        }
    }

    /// An EVAL counts only for a merge the agent takes part in, for its own model once its
    /// contribution is in, or for a merged model it was sent, with at most 32 finite metrics.
    /// The first value recorded stays; a repeat is acknowledged (the agent re-sends until it is).
    private mutating func record(_ eval: Eval, _ peer: PeerID, _ link: Link, _ effects: inout [AggregatorEffect]) throws {
        let name = try mayEvaluate(eval.method, link.agent, round: eval.round)
        guard (1...32).contains(eval.metrics.count),
              eval.metrics.allSatisfy({ PortableName.isPortable($0.key, maxLength: 64) && $0.value.isFinite }) else {
            throw AggregatorError.badMetrics(link.agent, eval.method)
        }
        var merge = merges[name]!
        if let earlier = merge.ledger.evaluations[link.agent]?[eval.method] {
            if earlier != eval.metrics {
                effects.append(.log(LogLine(.warning, "a second, different EVAL for one model is ignored; the first stays", ["agent": link.agent, "method": eval.method])))
            }
        } else {
            merge.ledger.evaluations[link.agent, default: [:]][eval.method] = eval.metrics
            merges[name] = merge
            counters.evalsReceived += 1
            effects.append(.saveLedger(merge: name, merge.ledger))
            effects.append(.log(LogLine(.info, "evaluation received", ["agent": link.agent, "merge": name, "method": eval.method,
                                                                       "metrics": eval.metrics.keys.sorted().map { "\($0)=\(String(format: "%.4f", eval.metrics[$0]!))" }.joined(separator: " ")])))
        }
        // Durable now: tell the agent, which re-sends an EVAL until it sees this.
        effects.append(.send(peer, .evaluated(Evaluated(round: eval.round, method: eval.method))))
    }

    /// Which model an agent may report on, in which merge (by id; nil: the link's own): its own
    /// once its contribution is in, or a merged model it was sent (recorded durably).
    private func mayEvaluate(_ method: String, _ agent: String, round: Int?) throws -> String {
        let involved = mergesInvolving(agent)
        let merge: MergeState?
        if let round { merge = involved.first { $0.definition.id == round } } else {
            merge = involved.first { $0.definition.methods.contains { $0.label == method } && ($0.ledger.delivered[agent] ?? []).contains(method) }
                ?? involved.first
        }
        guard let merge else { throw AggregatorError.wrongRound(agent, round ?? -1, involved.map(\.definition.id)) }
        if method == ReservedLabel.local {
            // Its own model: once that model is in (an audience-only agent has none to send).
            // Not the whole contribution: an agent re-sends an unacknowledged EVAL first thing
            // after WELCOME, also when new statistics are wanted and still on their way.
            let required = requiredFiles(agent)
            let hasContribution = required.isEmpty || (agents[agent]?.contributions.values.contains { $0.files.contains("model.safetensors") } ?? false)
            guard hasContribution || merge.phase.members[agent] != nil else { throw AggregatorError.evalBeforeUpload(agent) }
        } else {
            guard merge.definition.methods.contains(where: { $0.label == method }), (merge.ledger.delivered[agent] ?? []).contains(method) else {
                throw AggregatorError.evalNotDelivered(agent, loggable(method, limit: 80))
            }
        }
        return merge.definition.name
    }

    private mutating func quarantine(_ agent: String, _ fingerprint: String, reasons: [String], _ effects: inout [AggregatorEffect]) {
        effects.append(.log(LogLine(.error, "contribution quarantined; it will not be merged", ["agent": agent, "reasons": reasons.joined(separator: "; ")])))
        effects.append(.quarantine(agent: agent, fingerprint: fingerprint, reasons: reasons))
        agents[agent, default: AgentRecord()].quarantine = reasons
        agents[agent]!.contributions[fingerprint] = nil
        if agents[agent]!.current == fingerprint { agents[agent]!.current = nil }
        for (peer, link) in links where link.agent == agent {
            effects.append(.send(peer, .error(ErrorReport(code: "quarantined", message: "your contribution failed the aggregator's checks and will not be merged: \(reasons.joined(separator: "; "))"))))
            effects.append(.disconnect(peer))
            links[peer] = nil
        }
    }

    private mutating func drop(_ peer: PeerID, error: String, report: Message, _ effects: inout [AggregatorEffect]) {
        guard let link = links.removeValue(forKey: peer) else { return }
        counters.refusals["protocol", default: 0] += 1
        effects.append(.log(LogLine(.error, "dropping agent after a protocol error", ["agent": link.agent, "error": loggable(error, limit: 400)])))
        effects.append(.send(peer, report))
        effects.append(.disconnect(peer))
    }

    /// Exact removal: the agent's contributions go, durably, and every merge that used them
    /// runs again without it.
    private mutating func forget(_ agent: String, _ effects: inout [AggregatorEffect]) {
        forgotten.insert(agent)
        effects.append(.saveForgotten(forgotten.sorted()))
        for fp in (agents[agent]?.contributions.keys.sorted() ?? []) { effects.append(.deleteContribution(agent: agent, fingerprint: fp)) }
        agents[agent]?.contributions = [:]
        agents[agent]?.current = nil
        for (peer, link) in links where link.agent == agent {
            effects.append(.send(peer, .error(ErrorReport(code: "forgotten", message: "the operator removed your contribution from every merge"))))
            effects.append(.disconnect(peer))
            links[peer] = nil
        }
        var rerun: [String] = []
        for name in merges.keys.sorted() where merges[name]!.phase.members[agent] != nil {
            restart(name, definition: merges[name]!.definition, generation: merges[name]!.generation + 1, &effects)
            rerun.append(name)
        }
        effects.append(.log(LogLine(.notice, "agent forgotten: its contribution is deleted", ["agent": agent, "merging_again": rerun.joined(separator: ",")])))
        effects.append(.completeForget(agent: agent))
    }

    // MARK: reconcile

    mutating func reconcile(_ effects: inout [AggregatorEffect]) {
        tendStore(&effects)
        for name in merges.keys.sorted(by: { merges[$0]!.definition.id < merges[$1]!.definition.id }) { advance(name, &effects) }
        for peer in links.keys.sorted(by: { $0.description < $1.description }) { sendNextDownload(peer, &effects) }
        if case .merges(let names) = once, names.allSatisfy({ name in
            guard let merge = merges[name] else { return true }
            if case .finished = merge.phase { return true }
            if case .failed = merge.phase { return true }
            return false
        }) {
            let failed = names.compactMap { merges[$0] }.filter { if case .failed = $0.phase { true } else { false } }
            once = .exited
            effects.append(.exit(failed.isEmpty ? .success : .roundFailed))
        }
    }

    /// Statistics that no longer cover what the merges need are retired (the agent is asked
    /// again); complete, unchecked contributions are checked; superseded ones deleted.
    private mutating func tendStore(_ effects: inout [AggregatorEffect]) {
        for agent in agents.keys.sorted() {
            let needed = neededKinds(agent)
            let pinned = pinned(agent)
            let uploading = Set(links.values.compactMap { link -> String? in
                if link.agent == agent, case .welcomed(let fp, _, _) = link.phase { fp } else { nil }
            })
            for fp in agents[agent]!.contributions.keys.sorted() {
                var c = agents[agent]!.contributions[fp]!
                if c.files.contains("stats.safetensors"), !needed.isSubset(of: c.kinds), !pinned.contains(fp), c.verdict != .checking {
                    effects.append(.log(LogLine(.warning, "committed statistics lack what the merges need; asking the agent again",
                                                ["agent": agent, "lacks": needed.subtracting(c.kinds).sorted().map(\.rawValue).joined(separator: ",")])))
                    effects.append(.retireStatistics(agent: agent, fingerprint: fp))
                    c.files.remove("stats.safetensors")
                    c.kinds = []
                    c.verdict = .unchecked
                }
                let required = requiredFiles(agent)
                if c.verdict == .unchecked, required.allSatisfy(c.files.contains), needed.isSubset(of: c.kinds) {
                    c.verdict = .checking
                    effects.append(.check(agent: agent, fingerprint: fp))
                }
                agents[agent]!.contributions[fp] = c
                if let current = agents[agent]!.current, current != fp, agents[agent]!.contributions[current]?.verdict == .passed,
                   !pinned.contains(fp), !uploading.contains(fp) {
                    effects.append(.deleteContribution(agent: agent, fingerprint: fp))
                    effects.append(.log(LogLine(.info, "an older contribution was replaced", ["agent": agent, "fingerprint": String(fp.prefix(12))])))
                    agents[agent]!.contributions[fp] = nil
                }
            }
        }
    }

    private mutating func advance(_ name: String, _ effects: inout [AggregatorEffect]) {
        var merge = merges[name]!
        let definition = merge.definition
        switch merge.phase {
        case .waiting(let since):
            let active = active(merge)
            // A forgotten agent leaves 𝒦 itself: min_agents counts the agents that remain.
            let minAgents = min(definition.minAgents, definition.subset.filter { !forgotten.contains($0) }.count)
            guard active.count >= minAgents, minAgents > 0 else {
                let out = definition.subset.filter { !active.contains($0) }.map { agent in
                    forgotten.contains(agent) ? "\(agent) (forgotten)" : "\(agent) (\(agents[agent]?.quarantine?.first ?? "quarantined"))"
                }
                merge.phase = .failed(reason: "only \(active.count) of \(definition.subset.count) agents can still be merged (min_agents \(minAgents)); out: \(out.joined(separator: "; ")). Quarantined uploads are kept in the spool's store/.quarantine.")
                break
            }
            if definition.secure {
                advanceSecure(&merge, active: active, minAgents: minAgents, since: since, &effects)
                break
            }
            var ready: [String: String] = [:]
            for agent in active { if let fp = readyFingerprint(agent, for: merge) { ready[agent] = fp } }
            let checking = active.contains { agent in agents[agent]?.contributions.values.contains { $0.verdict == .checking } ?? false }
            if ready.count == active.count {
                merge.phase = .merging(members: ready, since: now)
            } else if now - since >= definition.deadline, !checking {
                let absent = active.filter { ready[$0] == nil }
                if ready.count >= minAgents {
                    effects.append(.log(LogLine(.warning, "deadline reached; merging the quorum", ["merge": name, "committed": ready.keys.sorted().joined(separator: ","), "absent": absent.joined(separator: ",")])))
                    merge.phase = .merging(members: ready, since: now)
                } else {
                    merge.phase = .failed(reason: "deadline of \(Int(definition.deadline)) s passed with \(ready.count) of \(definition.subset.count) agents ready (min_agents \(minAgents)); absent: \(absent.joined(separator: ", ")). Uploads stay in the store.")
                }
            }
            if case .merging(let members, _) = merge.phase {
                effects.append(.log(LogLine(.info, "all contributions in; merging", ["merge": name, "agents": members.keys.sorted().joined(separator: ",")])))
                effects.append(.saveRecord(merge.record))
                effects.append(.startMerge(definition, generation: merge.generation, members: members, fresh: true))
            }
        case .distributing(let members, let since):
            let pending = audience(merge).filter { !allEvaluated($0, merge) }
            if pending.isEmpty || now - since >= definition.evalTimeout {
                if !pending.isEmpty {
                    effects.append(.log(LogLine(.warning, "eval_timeout reached; writing the report without some evaluations", ["merge": name, "pending": pending.joined(separator: ",")])))
                }
                merge.phase = .finished(members: members)
                effects.append(.writeReport(merge: name, missing: pending))
                effects.append(.saveRecord(merge.record))
                effects.append(.log(LogLine(.info, "merge complete", ["merge": name])))
            }
        case .merging, .finished, .failed:
            break
        }
        if case .failed(let reason) = merge.phase, merges[name]!.phase != merge.phase {
            effects.append(.saveRecord(merge.record))
            effects.append(.log(LogLine(.error, "merge failed", ["merge": name, "reason": reason])))
            announceFailure(merge, reason: reason, &effects)
        }
        merges[name] = merge
    }

    /// A secure merge collecting: keys from every active member (or, at the deadline, a quorum)
    /// are relayed as one SECURE_KEYS; their bounds give SECURE_SCALE; their masked uploads,
    /// once all committed, are merged. A member that goes silent after the relay leaves masks
    /// in the others' uploads that only seed reveals could remove (not wired): at the deadline
    /// the merge fails, its spool kept.
    private func advanceSecure(_ merge: inout MergeState, active: [String], minAgents: Int, since: Double, _ effects: inout [AggregatorEffect]) {
        let definition = merge.definition, name = definition.name
        let late = now - since >= definition.deadline
        func send(_ message: Message, to members: [String]) {
            for peer in links.keys.sorted(by: { $0.description < $1.description }) {
                guard let link = links[peer], members.contains(link.agent), case .welcomed(_, let serving, _) = link.phase, serving == name else { continue }
                effects.append(.send(peer, message))
            }
        }
        guard let relayed = merge.secure.relayed else {
            let keyed = active.filter { merge.secure.keys[$0] != nil }
            if keyed.count == active.count || (late && keyed.count >= minAgents) {
                merge.secure.relayed = keyed
                send(.secureKeys(SecureKeys(round: definition.id, merge: name, keys: keyed.map { merge.secure.keys[$0]! })), to: keyed)
                effects.append(.log(LogLine(.info, "secure merge: keys relayed", ["merge": name, "members": keyed.joined(separator: ",")])))
            } else if late {
                merge.phase = .failed(reason: "deadline of \(Int(definition.deadline)) s passed with \(keyed.count) of \(active.count) secure-sum keys (min_agents \(minAgents)); missing: \(active.filter { merge.secure.keys[$0] == nil }.joined(separator: ", "))")
            }
            return
        }
        guard let scale = merge.secure.scale else {
            if relayed.allSatisfy({ merge.secure.bounds[$0] != nil }) {
                do {
                    let scale = try RoundScale.fix(round: definition.id, merge: name, bounds: merge.secure.bounds.filter { relayed.contains($0.key) })
                    merge.secure.scale = scale
                    send(.secureScale(scale), to: relayed)
                    effects.append(.log(LogLine(.info, "secure merge: fixed-point scale sent", ["merge": name, "summands": "\(scale.fractionBits.count)"])))
                } catch {
                    merge.phase = .failed(reason: "secure merge: the members' bounds cannot be combined: \(loggable("\(error)", limit: 400))")
                }
            } else if late {
                // Members without bounds are left out before any mask with them is applied:
                // the scale names who the sums hold, and members mask only with those.
                let have = relayed.filter { merge.secure.bounds[$0] != nil }
                guard have.count >= minAgents else {
                    merge.phase = .failed(reason: dropoutReason(merge, waitingFor: relayed.filter { merge.secure.bounds[$0] == nil }, what: "bounds", minAgents: minAgents))
                    return
                }
                merge.secure.dropped += relayed.filter { !have.contains($0) }
                merge.secure.bounds = merge.secure.bounds.filter { have.contains($0.key) }
                merge.secure.relayed = have
                effects.append(.log(LogLine(.warning, "secure merge: deadline reached; fixing the scale without the silent members",
                                            ["merge": name, "dropped": merge.secure.dropped.joined(separator: ",")])))
                merge.phase = .waiting(since: now)       // the next step gets a deadline of its own
                advanceSecure(&merge, active: active, minAgents: minAgents, since: now, &effects)
            }
            return
        }
        let committed = scale.agents.filter { merge.secure.masked[$0] != nil }
        if let requested = merge.secure.revealRequested {
            if committed.allSatisfy({ survivor in requested.allSatisfy { merge.secure.reveals[survivor]?[$0] != nil } }) {
                startSecureMerge(&merge, members: committed, &effects)
            } else if late {
                let silent = committed.filter { survivor in !requested.allSatisfy { merge.secure.reveals[survivor]?[$0] != nil } }
                merge.phase = .failed(reason: "deadline of \(Int(definition.deadline)) s passed without the seed reveals of \(silent.joined(separator: ", ")); the masks of \(requested.joined(separator: ", ")) cannot be removed. The masked uploads stay in the spool's secure/\(name)/.")
            }
            return
        }
        if committed.count == scale.agents.count {
            startSecureMerge(&merge, members: committed, &effects)
        } else if late {
            guard committed.count >= minAgents else {
                merge.phase = .failed(reason: dropoutReason(merge, waitingFor: scale.agents.filter { merge.secure.masked[$0] == nil }, what: "masked uploads", minAgents: minAgents))
                return
            }
            // Dropout after the scale: the survivors' uploads hold masks with the dropped
            // members; each survivor reveals the seeds it shares with them (nothing else).
            let dropped = scale.agents.filter { merge.secure.masked[$0] == nil }
            merge.secure.revealRequested = dropped
            merge.secure.dropped += dropped
            send(.revealRequest(RevealRequest(round: definition.id, merge: name, dropped: dropped)), to: committed)
            effects.append(.log(LogLine(.warning, "secure merge: deadline reached; asking the survivors to reveal their seeds with the dropped members",
                                        ["merge": name, "dropped": dropped.joined(separator: ","), "survivors": committed.joined(separator: ",")])))
            merge.phase = .waiting(since: now)
        }
    }

    private func startSecureMerge(_ merge: inout MergeState, members: [String], _ effects: inout [AggregatorEffect]) {
        merge.phase = .merging(members: Dictionary(uniqueKeysWithValues: members.map { ($0, SecureProgress.maskedMember) }), since: now)
        effects.append(.log(LogLine(.info, "secure merge: every masked upload in; summing", ["merge": merge.definition.name, "agents": members.joined(separator: ","),
                                                                                            "dropped": merge.secure.dropped.joined(separator: ",")])))
        effects.append(.saveRecord(merge.record))
        effects.append(.startMerge(merge.definition, generation: merge.generation, members: merge.phase.members, fresh: true))
    }

    private func dropoutReason(_ merge: MergeState, waitingFor missing: [String], what: String, minAgents: Int) -> String {
        "deadline of \(Int(merge.definition.deadline)) s passed without the \(what) of \(missing.joined(separator: ", ")) after the key exchange; "
            + "fewer than min_agents (\(minAgents)) members remain, so the secure merge fails. "
            + "The masked uploads stay in the spool's secure/\(merge.definition.name)/."
    }

    /// A secure merge given up: every agent whose link serves it is told (MERGE_FAILED), so a
    /// member waiting for keys, a scale, a reveal request or models stops waiting; a `--once`
    /// agent exits 3, an enrolled one asks for its next merge later. (Clear merges keep their
    /// agents' uploads for a re-run of the merge file and are not announced.)
    private func announceFailure(_ merge: MergeState, reason: String, _ effects: inout [AggregatorEffect]) {
        guard merge.definition.secure else { return }
        let failure = MergeFailed(round: merge.definition.id, merge: merge.definition.name, reason: String(reason.prefix(4000)))
        for peer in links.keys.sorted(by: { $0.description < $1.description }) {
            guard case .welcomed(_, let serving, _) = links[peer]!.phase, serving == merge.definition.name else { continue }
            effects.append(.send(peer, .mergeFailed(failure)))
        }
    }

    /// The secure merge a link serves, when its agent is a member of it.
    func secureMerge(of link: Link) -> MergeState? {
        guard case .welcomed(_, let serving, _) = link.phase, let merge = merges[serving], merge.definition.secure,
              merge.definition.subset.contains(link.agent) else { return nil }
        return merge
    }

    /// Starts sending the next merged model the link's agent has neither evaluated nor received on this link.
    private mutating func sendNextDownload(_ peer: PeerID, _ effects: inout [AggregatorEffect]) {
        guard let link = links[peer], case .welcomed(let fp, let serving, nil) = link.phase, let merge = merges[serving] else { return }
        switch merge.phase {
        case .distributing, .finished: break
        default: return
        }
        guard audience(merge).contains(link.agent) else { return }
        let sent = link.delivered[serving] ?? []
        guard let entry = merge.definition.methods.first(where: { !merge.ledger.isEvaluated(link.agent, $0.label) && !sent.contains($0.label) }) else { return }
        links[peer]!.phase = .welcomed(fingerprint: fp, serving: serving, download: Download(merge: serving, label: entry.label))
        let headsPrefix = entry.choice.parameters.string("heads_prefix") ?? HeadsNaming.defaultPrefix
        effects.append(.startDownload(peer, merge: serving, label: entry.label,
                                      announcement: Merged(round: merge.definition.id, method: entry.label, files: [],
                                                           mergeMethod: entry.choice.name, headsPrefix: headsPrefix)))
    }
}

public enum AggregatorError: Error, CustomStringConvertible, Equatable {
    case notWelcomed(String, String)
    case unexpected(String, String)
    case unexpectedFile(String, String, [String])
    case wrongRound(String, Int, [Int])
    case evalBeforeUpload(String)
    case evalNotDelivered(String, String)
    case badMetrics(String, String)
    case secureMismatch(String, String)

    public var description: String {
        switch self {
        case let .notWelcomed(agent, type): return "agent \(agent) sent \(type) before HELLO was accepted"
        case let .unexpected(agent, type): return "agent \(agent) sent an unexpected \(type)"
        case let .unexpectedFile(agent, name, required): return "agent \(agent) offered '\(loggable(name, limit: 80))'; a contribution is \(required.joined(separator: ", "))"
        case let .wrongRound(agent, got, rounds): return "agent \(agent) sent an EVAL for round \(got), which is no merge it takes part in (\(rounds.map(String.init).joined(separator: ", ")))"
        case let .evalBeforeUpload(agent): return "agent \(agent) sent an EVAL of its own model before its contribution was committed (no model.safetensors yet)"
        case let .evalNotDelivered(agent, method): return "agent \(agent) sent an EVAL of '\(method)', a merged model it was not sent"
        case let .secureMismatch(agent, what): return "agent \(agent) sent \(what)"
        case let .badMetrics(agent, method): return "agent \(agent) sent an EVAL of '\(loggable(method, limit: 80))' whose metrics are not 1–32 finite values with portable names"
        }
    }
}
