// The aggregator's transition function driven through scenarios with plain values — no
// sockets, no disk, no processes: admission refusals, uploads asked for only when the store
// lacks the fingerprint, a whole merge, duplicate and forged EVALs, reconnects, restarts from
// disk, quarantine, a fingerprint changing mid-merge, a changed merge file, and forget.

@testable import Aggregator
import DaemonSupport
import Foundation
import Merge
import Protocol
import XCTest

final class AggregatorTransitionTests: XCTestCase {
    let base = String(repeating: "b", count: 64)
    let fpA = String(repeating: "a", count: 64)
    let fpA2 = String(repeating: "c", count: 64)
    let fpB = String(repeating: "d", count: 64)
    let fpC = String(repeating: "e", count: 64)

    func peer(_ n: UInt8) -> PeerID { PeerID(Data([n])) }

    func method(_ name: String, label: String? = nil, _ parameters: [String: MergeValue] = [:]) throws -> MergeDefinition.MethodEntry {
        MergeDefinition.MethodEntry(label: label ?? name, choice: try MethodChoice(from: ["merge_method": .string(name), "parameters": .map(parameters)], file: "test"))
    }

    func merge(_ name: String, id: Int, subset: [String], methods: [MergeDefinition.MethodEntry], minAgents: Int? = nil, deadline: Double = 100) -> MergeDefinition {
        MergeDefinition(name: name, id: id, file: "merges/\(name).yaml", subset: subset, audience: nil, minAgents: minAgents ?? subset.count,
                        deadline: deadline, evalTimeout: 50, heads: "average", methods: methods)
    }

    /// A state whose store holds passed contributions (Grams and Fishers) for `stored`.
    func state(stored: [String: String] = [:], once: Bool = false) -> AggregatorState {
        var s = AggregatorState(allow: ["a", "b", "c", "outsider"], baseFingerprint: base, baseModel: "base", once: once)
        for (agent, fp) in stored {
            s.agents[agent] = AgentRecord(contributions: [fp: StoredContribution(files: Set(contributionFiles(needStatistics: true)), kinds: [.gram, .fisher, .labelCounts], bytes: 100, verdict: .passed)],
                                          current: fp)
        }
        return s
    }

    func hello(_ name: String, fp: String? = nil, version: Int = Int(ProtocolVersion.current), base: String? = nil, round: Int? = nil) -> Message {
        .hello(Hello(name: name, baseFingerprint: base ?? self.base, protocolVersion: version, round: round, contribution: fp))
    }

    func sent(_ effects: [AggregatorEffect], to p: PeerID) -> [Message] {
        effects.compactMap { if case .send(let q, let m) = $0, q == p { m } else { nil } }
    }

    // MARK: admission

    func testAdmissionRefusalsNameTheReasonCountItAndKeepNoLink() throws {
        let regmean = try method("regmean")
        let cases: [(String, (inout AggregatorState) -> Void, String, Message, String)] = [
            ("name", { _ in }, "a", hello("b"), "the certificate is 'a'"),
            ("protocol", { _ in }, "a", hello("a", version: 99), "protocol version 99"),
            ("base_model", { _ in }, "a", hello("a", base: String(repeating: "f", count: 64)), "different base model"),
            ("not_member", { _ in }, "outsider", hello("outsider"), "not in this round's subset"),
            ("round", { _ in }, "a", hello("a", round: 7), "round 7 requested"),
            ("forgotten", { $0.forgotten = ["a"] }, "a", hello("a"), "forgotten by the operator"),
            ("quarantined", { $0.agents["a"] = AgentRecord(quarantine: ["poisoned"]) }, "a", hello("a"), "quarantined (poisoned)"),
            ("fingerprint", { _ in }, "a", hello("a", fp: "../../etc"), "not 64 lowercase hex digits"),
        ]
        for (kind, setUp, agent, message, needle) in cases {
            var s = state()
            setUp(&s)
            run(&s, [.definitions([merge("m", id: 1, subset: ["a", "b"], methods: [regmean])]), .connected(peer(1), name: agent)])
            let effects = run(&s, [.message(peer(1), message)])
            guard case .refused(let refused) = sent(effects, to: peer(1)).first else { XCTFail("\(kind): not refused: \(effects)"); continue }
            XCTAssertTrue(refused.reason.contains(needle), "\(kind): \(refused.reason)")
            XCTAssertTrue(effects.contains(.disconnect(peer(1))), kind)
            XCTAssertFalse(effects.contains { if case .openUpload = $0 { true } else { false } }, "\(kind): a refused agent gets no upload spool")
            XCTAssertNil(s.links[peer(1)], kind)
            XCTAssertEqual(s.counters.refusals[kind], 1, kind)
        }
    }

    func testAnAgentWhoseFingerprintIsStoredIsNotAskedToUpload() throws {
        var s = state(stored: ["a": fpA])
        run(&s, [.definitions([merge("m", id: 1, subset: ["a", "b"], methods: [try method("regmean"), try method("fisher")])]), .connected(peer(1), name: "a")])
        guard case .welcome(let same) = sent(run(&s, [.message(peer(1), hello("a", fp: fpA))]), to: peer(1)).first else { return XCTFail("no WELCOME") }
        XCTAssertEqual(same.committed, same.required, "every file of the stored fingerprint is committed")
        XCTAssertEqual(same.wantedStatistics, [.fisher, .gram])
        XCTAssertEqual(same.round, 1)

        run(&s, [.connected(peer(2), name: "a")])
        let effects = run(&s, [.message(peer(2), hello("a", fp: fpA2))])
        guard case .welcome(let changed) = sent(effects, to: peer(2)).first else { return XCTFail("no WELCOME") }
        XCTAssertEqual(changed.committed, [], "a new fingerprint uploads everything")
        XCTAssertTrue(effects.contains(.openUpload(peer(2), agent: "a", fingerprint: fpA2)))
        // An offer of a file that is no part of a contribution is a protocol error.
        let offer = run(&s, [.message(peer(2), .offer(Offer(transferID: "t", name: "../evil", size: 1, sha256: "0")))])
        guard case .error(let report) = sent(offer, to: peer(2)).first else { return XCTFail("odd file accepted") }
        XCTAssertTrue(report.message.contains("../evil"), report.message)
    }

    func testWithAlignAnotherBaseIsAdmittedAndRememberedUntilTheAgentReturnsOnTheBase() throws {
        // `align:` sets admitsOtherBases; the refusal above is the case without it.
        let other = String(repeating: "f", count: 64)
        var s = state()
        s.admitsOtherBases = true
        run(&s, [.definitions([merge("m", id: 1, subset: ["a", "b"], methods: [try method("regmean")])]), .connected(peer(1), name: "a")])
        let effects = run(&s, [.message(peer(1), hello("a", fp: fpA, base: other))])
        guard case .welcome = sent(effects, to: peer(1)).first else { return XCTFail("not admitted: \(effects)") }
        XCTAssertEqual(s.agents["a"]?.otherBase, other, "the check thread is told not to limit its distance from this base")
        XCTAssertTrue(effects.contains { if case .log(let line) = $0 { line.message.contains("different base model") } else { false } })
        run(&s, [.connected(peer(2), name: "a")])
        guard case .welcome = sent(run(&s, [.message(peer(2), hello("a", fp: fpA2))]), to: peer(2)).first else { return XCTFail("not admitted") }
        XCTAssertNil(s.agents["a"]?.otherBase, "back on the aggregator's base: measured against it again")
    }

    // MARK: one whole merge

    func testAMergeRunsFromUploadsToReportAndOnceExits() throws {
        var s = state(once: true)
        run(&s, [.tick(now: 1000), .definitions([merge("round-1", id: 1, subset: ["a", "b"], methods: [try method("regmean"), try method("average")])])])
        XCTAssertEqual(s.once, .merges(["round-1"]))
        var checks: [AggregatorEffect] = []
        for (i, (agent, fp)) in [("a", fpA), ("b", fpB)].enumerated() {
            let p = peer(UInt8(i + 1))
            run(&s, [.connected(p, name: agent), .message(p, hello(agent, fp: fp))])
            checks += run(&s, [.uploadCommitted(p, file: "config.json", bytes: 10, kinds: []),
                               .uploadCommitted(p, file: "model.safetensors", bytes: 1000, kinds: []),
                               .uploadCommitted(p, file: "stats.safetensors", bytes: 500, kinds: [.gram, .labelCounts])])
        }
        XCTAssertEqual(checks.filter { if case .check = $0 { true } else { false } }, [.check(agent: "a", fingerprint: fpA), .check(agent: "b", fingerprint: fpB)])
        XCTAssertEqual(s.merges["round-1"]?.phase, .waiting(since: 1000))
        let started = run(&s, [.checked(agent: "a", fingerprint: fpA, reasons: [], distances: ""), .checked(agent: "b", fingerprint: fpB, reasons: [], distances: "")])
        let definition = s.merges["round-1"]!.definition
        XCTAssertTrue(started.contains(.startMerge(definition, generation: 0, members: ["a": fpA, "b": fpB], fresh: true)), "\(started)")
        XCTAssertTrue(started.contains(.markChecked(agent: "a", fingerprint: fpA)))

        let done = run(&s, [.tick(now: 1010), .mergeDone(merge: "round-1", generation: 0, seconds: ["regmean": 1.5, "average": 0.5])])
        XCTAssertEqual(s.merges["round-1"]?.phase, .distributing(members: ["a": fpA, "b": fpB], since: 1010))
        XCTAssertEqual(done.filter { if case .startDownload = $0 { true } else { false } }.count, 2, "one download per link at a time")
        XCTAssertEqual(s.counters.mergeSeconds["round-1/regmean"], 1.5)

        for (i, agent) in ["a", "b"].enumerated() {
            let p = peer(UInt8(i + 1))
            for label in ["regmean", "average"] {
                let effects = run(&s, [.downloadDelivered(p, bytes: 1000), .message(p, .eval(Eval(round: 1, method: label, metrics: ["accuracy": 0.8])))])
                XCTAssertEqual(sent(effects, to: p).first, .evaluated(Evaluated(round: 1, method: label)), "\(agent)/\(label): EVALUATED after the ledger is saved")
                let saveIndex = effects.firstIndex { if case .saveLedger = $0 { true } else { false } }
                let ackIndex = effects.firstIndex { if case .send(_, .evaluated) = $0 { true } else { false } }
                XCTAssertLessThan(saveIndex ?? .max, ackIndex ?? -1, "durable before acknowledged")
            }
        }
        XCTAssertFalse(s.merges["round-1"]!.phase == .finished(members: ["a": fpA, "b": fpB]), "local evaluations are still missing")
        run(&s, [.message(peer(1), .eval(Eval(round: 1, method: ReservedLabel.local, metrics: ["accuracy": 0.9])))])
        let last = run(&s, [.message(peer(2), .eval(Eval(round: 1, method: ReservedLabel.local, metrics: ["accuracy": 0.9])))])
        XCTAssertEqual(s.merges["round-1"]?.phase, .finished(members: ["a": fpA, "b": fpB]))
        XCTAssertTrue(last.contains(.writeReport(merge: "round-1", missing: [])))
        XCTAssertTrue(last.contains(.exit(.success)))
        XCTAssertEqual(s.counters.evalsReceived, 6)
    }

    func testTooFewAgentsAtTheDeadlineFailsTheMergeAndOnceExitsThree() throws {
        var s = state(stored: ["a": fpA], once: true)
        let early = run(&s, [.tick(now: 0), .definitions([merge("m", id: 1, subset: ["a", "b", "c"], methods: [try method("average")], minAgents: 2, deadline: 10)])])
        XCTAssertFalse(early.contains { if case .startMerge = $0 { true } else { false } })
        let late = run(&s, [.tick(now: 11)])
        guard case .failed(let reason) = s.merges["m"]?.phase else { return XCTFail("not failed: \(String(describing: s.merges["m"]?.phase))") }
        XCTAssertTrue(reason.contains("absent: b, c"), reason)
        XCTAssertTrue(late.contains(.exit(.roundFailed)))
    }

    // MARK: duplicates, forgeries, reconnects

    func testEvalResendsAreAcknowledgedOnceRecordedAndForgedEvalsDropTheLink() throws {
        var s = distributing()
        let first = run(&s, [.downloadDelivered(peer(1), bytes: 10), .message(peer(1), .eval(Eval(round: 1, method: "regmean", metrics: ["accuracy": 0.7])))])
        XCTAssertEqual(first.filter { if case .saveLedger = $0 { true } else { false } }.count, 2, "delivery and EVAL saved")
        let again = run(&s, [.message(peer(1), .eval(Eval(round: 1, method: "regmean", metrics: ["accuracy": 0.7])))])
        XCTAssertFalse(again.contains { if case .saveLedger = $0 { true } else { false } }, "a re-sent EVAL changes nothing")
        XCTAssertEqual(sent(again, to: peer(1)), [.evaluated(Evaluated(round: 1, method: "regmean"))], "but is acknowledged again")
        run(&s, [.message(peer(1), .eval(Eval(round: 1, method: "regmean", metrics: ["accuracy": 0.99])))])
        XCTAssertEqual(s.merges["m"]?.ledger.evaluations["a"]?["regmean"], ["accuracy": 0.7], "the first value stays")

        // b was never sent fisher: its EVAL of it is forged.
        let forged = run(&s, [.message(peer(2), .eval(Eval(round: 1, method: "fisher", metrics: ["accuracy": 1])))])
        guard case .error(let report) = sent(forged, to: peer(2)).first else { return XCTFail("forged EVAL accepted") }
        XCTAssertTrue(report.message.contains("not sent"), report.message)
        XCTAssertNil(s.links[peer(2)])
        XCTAssertNil(s.merges["m"]?.ledger.evaluations["b"])
        let wrongRound = run(&s, [.message(peer(1), .eval(Eval(round: 9, method: "regmean", metrics: ["accuracy": 1])))])
        guard case .error(let roundReport) = sent(wrongRound, to: peer(1)).first else { return XCTFail("EVAL for an unknown round accepted") }
        XCTAssertTrue(roundReport.message.contains("round 9"), roundReport.message)
    }

    func testAReconnectingAgentGetsTheModelItHasNotEvaluatedAgain() throws {
        var s = distributing()
        XCTAssertEqual(s.links[peer(1)]?.phase, .welcomed(fingerprint: fpA, serving: "m", download: Download(merge: "m", label: "regmean")))
        run(&s, [.disconnected(peer(1), reason: "heartbeat", superseded: false)])
        XCTAssertNil(s.links[peer(1)])
        let effects = run(&s, [.connected(peer(3), name: "a"), .message(peer(3), hello("a", fp: fpA))])
        guard case .welcome(let welcome) = sent(effects, to: peer(3)).first else { return XCTFail("no WELCOME") }
        XCTAssertEqual(welcome.phase, .distributing)
        XCTAssertTrue(effects.contains { if case .startDownload(peer(3), "m", "regmean", _) = $0 { true } else { false } }, "\(effects)")
        // A message from a link that is not welcomed yet is a protocol error.
        let early = run(&s, [.connected(peer(4), name: "b"), .message(peer(4), .eval(Eval(round: 1, method: "local", metrics: ["accuracy": 1])))])
        XCTAssertTrue(sent(early, to: peer(4)).contains { if case .error(let r) = $0 { r.message.contains("before HELLO") } else { false } })
    }

    /// Merge "m" (regmean, fisher) of a and b, distributing, both agents linked (peers 1 and 2).
    func distributing() -> AggregatorState {
        var s = state(stored: ["a": fpA, "b": fpB])
        run(&s, [.tick(now: 0), .definitions([merge("m", id: 1, subset: ["a", "b"], methods: [try! method("regmean"), try! method("fisher")])])])
        run(&s, [.mergeDone(merge: "m", generation: 0, seconds: [:])])
        run(&s, [.connected(peer(1), name: "a"), .message(peer(1), hello("a", fp: fpA)), .connected(peer(2), name: "b"), .message(peer(2), hello("b", fp: fpB))])
        return s
    }

    // MARK: restarts, quarantine, changes

    func testRestartFromDiskResumesEachMergeWhereItsRecordLeftIt() throws {
        let definition = merge("m", id: 1, subset: ["a", "b"], methods: [try method("regmean")])
        let members = ["a": fpA, "b": fpB]
        let table: [(MergePhase, MergePhaseState, Bool)] = [
            (.distributing, .distributing(members: members, since: 5), false),
            (.finished, .finished(members: members), false),
            (.merging, .merging(members: members, since: 5), true),
        ]
        for (phase, expected, merges) in table {
            var s = state(stored: members)
            s.records["m"] = MergeRecord(name: "m", id: 1, generation: 3, digest: definition.digest, phase: phase, members: members)
            var ledger = MergeLedger()
            ledger.evaluations["a"] = ["regmean": ["accuracy": 0.5]]
            s.ledgers["m"] = ledger
            let effects = run(&s, [.tick(now: 5), .definitions([definition])])
            XCTAssertEqual(s.merges["m"]?.phase, expected, "\(phase)")
            XCTAssertEqual(s.merges["m"]?.generation, 3)
            XCTAssertEqual(s.merges["m"]?.ledger, ledger, "EVALs survive the restart")
            XCTAssertEqual(effects.contains(.startMerge(definition, generation: 3, members: members, fresh: false)), merges, "\(phase): \(effects)")
        }
        // A definition that differs from the merged one merges again, afresh.
        var s = state(stored: members)
        s.records["m"] = MergeRecord(name: "m", id: 1, generation: 3, digest: "other", phase: .finished, members: members)
        let effects = run(&s, [.definitions([definition])])
        XCTAssertTrue(effects.contains(.startMerge(definition, generation: 4, members: members, fresh: true)), "\(effects)")
    }

    func testAQuarantinedContributionTellsItsAgentAndFailsAMergeThatCannotReachItsQuorum() throws {
        var s = state(stored: ["b": fpB])
        run(&s, [.definitions([merge("m", id: 1, subset: ["a", "b"], methods: [try method("average")], minAgents: 2)]),
                 .connected(peer(1), name: "a"), .message(peer(1), hello("a", fp: fpA)),
                 .uploadCommitted(peer(1), file: "config.json", bytes: 1, kinds: []), .uploadCommitted(peer(1), file: "model.safetensors", bytes: 1, kinds: [])])
        let effects = run(&s, [.checked(agent: "a", fingerprint: fpA, reasons: ["model.safetensors: bert.x moved 1e30"], distances: "")])
        XCTAssertTrue(effects.contains(.quarantine(agent: "a", fingerprint: fpA, reasons: ["model.safetensors: bert.x moved 1e30"])))
        guard case .error(let report) = sent(effects, to: peer(1)).first else { return XCTFail("agent not told") }
        XCTAssertEqual(report.code, "quarantined")
        XCTAssertTrue(report.message.contains("moved 1e30"))
        guard case .failed(let reason) = s.merges["m"]?.phase else { return XCTFail("merge still waiting") }
        XCTAssertTrue(reason.contains("a (model.safetensors: bert.x moved 1e30)"), reason)
    }

    func testAFingerprintChangingMidMergeLeavesTheSnapshotAloneUntilTheMergeIsDone() throws {
        var s = state(stored: ["a": fpA, "b": fpB])
        run(&s, [.definitions([merge("m", id: 1, subset: ["a", "b"], methods: [try method("regmean")])])])
        XCTAssertEqual(s.merges["m"]?.phase.members, ["a": fpA, "b": fpB])
        // a retrains and uploads a new contribution while the merge runs.
        run(&s, [.connected(peer(1), name: "a"), .message(peer(1), hello("a", fp: fpA2))])
        for file in contributionFiles(needStatistics: true) {
            run(&s, [.uploadCommitted(peer(1), file: file, bytes: 1, kinds: file == "stats.safetensors" ? [.gram] : [])])
        }
        let passed = run(&s, [.checked(agent: "a", fingerprint: fpA2, reasons: [], distances: "")])
        XCTAssertEqual(s.agents["a"]?.current, fpA2, "new merges use the new contribution")
        XCTAssertFalse(passed.contains(.deleteContribution(agent: "a", fingerprint: fpA)), "the running merge still reads the old one")
        XCTAssertEqual(s.merges["m"]?.phase.members["a"], fpA)
        run(&s, [.disconnected(peer(1), reason: "done", superseded: false)])
        let after = run(&s, [.mergeDone(merge: "m", generation: 0, seconds: [:])])
        XCTAssertTrue(after.contains(.deleteContribution(agent: "a", fingerprint: fpA)), "replaced once no merge reads it")
        XCTAssertEqual(s.merges["m"]?.phase.members["a"], fpA, "the merge reports the snapshot it merged")
    }

    func testAChangedMergeFileMergesAgainFromTheStoreAndNewStatisticsAreAskedFor() throws {
        var s = state(stored: ["a": fpA, "b": fpB])
        run(&s, [.definitions([merge("m", id: 1, subset: ["a", "b"], methods: [try method("regmean")])]), .mergeDone(merge: "m", generation: 0, seconds: [:])])
        let changed = merge("m", id: 1, subset: ["a", "b"], methods: [try method("regmean", ["alpha": .number(0.5)])])
        let effects = run(&s, [.definitions([changed])])
        XCTAssertTrue(effects.contains(.startMerge(changed, generation: 1, members: ["a": fpA, "b": fpB], fresh: true)), "\(effects)")
        XCTAssertFalse(effects.contains { if case .retireStatistics = $0 { true } else { false } })
        // A method that needs statistics the store lacks (K-FAC): retire and ask again; the merge waits.
        let mats = merge("m", id: 1, subset: ["a", "b"], methods: [try method("mats", ["objective": .string("kfac")])])
        let more = run(&s, [.mergeDone(merge: "m", generation: 1, seconds: [:]), .definitions([mats])])
        XCTAssertTrue(more.contains(.retireStatistics(agent: "a", fingerprint: fpA)), "\(more)")
        XCTAssertEqual(s.merges["m"]?.phase, .waiting(since: 0))
        run(&s, [.connected(peer(1), name: "a")])
        guard case .welcome(let welcome) = sent(run(&s, [.message(peer(1), hello("a", fp: fpA))]), to: peer(1)).first else { return XCTFail("no WELCOME") }
        XCTAssertEqual(welcome.committed, ["config.json", "model.safetensors"], "only the statistics are asked for again")
        XCTAssertTrue(welcome.wantedStatistics.contains(.kfacOut))
        // A removed merge file stops nothing written: the record stays.
        run(&s, [.definitions([])])
        XCTAssertNil(s.merges["m"])
        XCTAssertEqual(s.records["m"]?.generation, 2)
    }

    /// A merge re-run (changed file, forget) keeps a member's EVAL of its own model while its
    /// contribution is unchanged — the agent acknowledged it for this merge id and will not send
    /// it again — and drops it when the contribution changed (a new model to score).
    func testAReRunMergeKeepsOwnModelEvalsOfUnchangedContributionsOnly() throws {
        var s = state(stored: ["a": fpA, "b": fpB])
        run(&s, [.definitions([merge("m", id: 1, subset: ["a", "b"], methods: [try method("regmean")])]), .mergeDone(merge: "m", generation: 0, seconds: [:])])
        for (i, agent) in ["a", "b"].enumerated() {
            let p = peer(UInt8(i + 1))
            run(&s, [.connected(p, name: agent), .message(p, hello(agent, fp: agent == "a" ? fpA : fpB)),
                     .message(p, .eval(Eval(round: 1, method: ReservedLabel.local, metrics: ["accuracy": 0.9 - Double(i) / 10])))])
        }
        XCTAssertTrue(s.merges["m"]!.ledger.isEvaluated("a", ReservedLabel.local) && s.merges["m"]!.ledger.isEvaluated("b", ReservedLabel.local))
        s.agents["b"]?.current = fpC   // b's newer contribution passed its checks
        run(&s, [.definitions([merge("m", id: 1, subset: ["a", "b"], methods: [try method("regmean", ["alpha": .number(0.5)])])])])
        let ledger = s.merges["m"]!.ledger
        XCTAssertEqual(ledger.evaluations["a"]?[ReservedLabel.local], ["accuracy": 0.9], "a's own model is unchanged: its EVAL stands")
        XCTAssertNil(ledger.evaluations["b"], "b's model changed: scored again")
        XCTAssertFalse(ledger.isEvaluated("a", "regmean"), "merged models are new")
    }

    func testForgetDeletesTheContributionAndMergesAgainWithoutTheAgent() throws {
        var s = state(stored: ["a": fpA, "b": fpB, "c": fpC])
        let definition = merge("m", id: 1, subset: ["a", "b", "c"], methods: [try method("regmean")])
        let other = merge("ab", id: 2, subset: ["a", "b"], methods: [try method("average")])
        run(&s, [.definitions([definition, other]), .mergeDone(merge: "m", generation: 0, seconds: [:]), .mergeDone(merge: "ab", generation: 0, seconds: [:]),
                 .connected(peer(3), name: "c"), .message(peer(3), hello("c", fp: fpC))])
        let effects = run(&s, [.forget(agent: "c")])
        XCTAssertTrue(effects.contains(.deleteContribution(agent: "c", fingerprint: fpC)))
        XCTAssertTrue(effects.contains(.saveForgotten(["c"])))
        XCTAssertTrue(effects.contains(.startMerge(definition, generation: 1, members: ["a": fpA, "b": fpB], fresh: true)), "\(effects)")
        XCTAssertFalse(effects.contains { if case .startMerge(let d, _, _, _) = $0 { d.name == "ab" } else { false } }, "a merge without c is left alone")
        XCTAssertTrue(effects.contains(.completeForget(agent: "c")))
        XCTAssertNil(s.links[peer(3)], "c's link is closed")
        XCTAssertEqual(s.merges["m"]?.ledger, MergeLedger(), "EVALs of the old models are gone")
        run(&s, [.connected(peer(4), name: "c")])
        guard case .refused = sent(run(&s, [.message(peer(4), hello("c", fp: fpC))]), to: peer(4)).first else { return XCTFail("a forgotten agent was admitted") }
    }

    func testAnAudienceOnlyAgentUploadsNothingAndEvaluatesTheMergedModels() throws {
        var s = state(stored: ["a": fpA, "b": fpB])
        var definition = merge("m", id: 1, subset: ["a", "b"], methods: [try method("average")])
        definition.audience = ["c"]
        run(&s, [.definitions([definition]), .mergeDone(merge: "m", generation: 0, seconds: [:])])
        let effects = run(&s, [.connected(peer(3), name: "c"), .message(peer(3), hello("c"))])
        guard case .welcome(let welcome) = sent(effects, to: peer(3)).first else { return XCTFail("audience agent refused: \(effects)") }
        XCTAssertEqual(welcome.required, [], "nothing to upload")
        XCTAssertEqual(welcome.merges, [MergeMembership(round: 1, name: "m", methods: ["average"], contributes: false)])
        XCTAssertTrue(effects.contains { if case .startDownload(peer(3), "m", "average", _) = $0 { true } else { false } })
        let offer = run(&s, [.message(peer(3), .offer(Offer(transferID: "t", name: "model.safetensors", size: 1, sha256: "0")))])
        XCTAssertTrue(sent(offer, to: peer(3)).contains { if case .error = $0 { true } else { false } }, "an audience agent may not upload")
        run(&s, [.connected(peer(4), name: "c"), .message(peer(4), hello("c"))])
        let done = run(&s, [.downloadDelivered(peer(4), bytes: 1), .message(peer(4), .eval(Eval(round: 1, method: "average", metrics: ["accuracy": 0.5])))])
        XCTAssertTrue(done.contains(.writeReport(merge: "m", missing: [])), "the audience's EVALs complete the merge: \(done)")
    }
}
