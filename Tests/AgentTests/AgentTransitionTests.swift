// The agent's transition function driven through scenario tables with plain values — no
// sockets, no disk, no processes: admission refusals, WELCOME asking for uploads or nothing,
// a reconnect during an upload, duplicate MERGED, EVAL re-sends, a restart from disk,
// --once finishing and enrolled agents staying, and the reconnect backoff. Each row checks
// the resulting state and the exact effects (log lines aside, which are checked by content).

@testable import Agent
import DaemonSupport
import Protocol
import XCTest

final class AgentTransitionTests: XCTestCase {
    private let all = ["config.json", "model.safetensors", "stats.safetensors"]
    private let m1 = ["accuracy": 0.75, "macro_f1": 0.7]
    private let m2 = ["accuracy": 0.8, "macro_f1": 0.78]
    private let shaX = String(repeating: "1", count: 64)
    private let shaY = String(repeating: "2", count: 64)

    private func settings(once: Bool, connectTimeout: Double = 600) -> AgentSettings {
        AgentSettings(once: once, connectTimeout: connectTimeout, helloInterval: 15, welcomeTimeout: 30, baseModelBytes: 1 << 20)
    }

    private func welcome(round: Int = 1, methods: [String] = ["regmean"], statistics: [StatisticKind] = [.gram],
                         required: [String]? = nil, committed: [String] = []) -> Welcome {
        Welcome(round: round, merge: "m\(round)", wantedStatistics: statistics, methods: methods,
                required: required ?? all, committed: committed, phase: .collecting)
    }

    private func merged(_ label: String, round: Int = 1, sha: String, size: UInt64 = 1000) -> Message {
        .merged(Merged(round: round, method: label, files: [MergedFile(name: label + ".safetensors", size: size, sha256: sha)], mergeMethod: label))
    }

    /// Steps through `events`, returning every effect.
    @discardableResult
    private func run(_ s: inout AgentState, _ events: [AgentEvent]) -> [AgentEffect] {
        var all: [AgentEffect] = []
        for event in events {
            let (next, effects) = step(s, event)
            s = next
            all += effects
        }
        return all
    }

    /// The effects other than log lines, in order.
    private func actions(_ effects: [AgentEffect]) -> [AgentEffect] {
        effects.filter { if case .log = $0 { false } else { true } }
    }

    private func logs(_ effects: [AgentEffect]) -> String {
        effects.compactMap { if case .log(let line) = $0 { line.message } else { nil } }.joined(separator: "\n")
    }

    /// Started and linked, HELLO sent, at clock 100.
    private func linked(once: Bool = false, connectTimeout: Double = 600) -> AgentState {
        var s = AgentState.starting(AgentMemory(settings: settings(once: once, connectTimeout: connectTimeout)))
        let effects = run(&s, [.tick(now: 100), .started, .linkUp])
        XCTAssertEqual(actions(effects), [.connect(after: 0), .sendHello])
        return s
    }

    /// Admitted to a merge whose contribution is all in, prepared, the own model handed to the worker.
    private func serving(once: Bool = false, methods: [String] = ["regmean"]) -> AgentState {
        var s = linked(once: once)
        run(&s, [.welcome(welcome(methods: methods, committed: all), saved: SentEvaluations())])
        let effects = run(&s, [.prepared])
        XCTAssertEqual(actions(effects), [.evaluate(round: 1, .local)])
        return s
    }

    private func served(_ s: AgentState) -> ServedMerge? { s.memory?.served }

    // MARK: admission

    func testAdmissionRefusalsEndTheRunWithTheirExitCodeAndReport() {
        let badLabel = "../x"
        let rows: [(name: String, event: AgentEvent, exit: DaemonExit, actions: [AgentEffect], log: String)] = [
            ("REFUSED", .message(.refused(Refused(reason: "not in this round's subset"))), .refused, [], "refused by the aggregator: not in this round's subset"),
            ("certificate", .linkRefused(reason: "the aggregator refused this agent's certificate: x"), .refused, [], "refused this agent's certificate"),
            ("handshake", .linkRefused(reason: "TLS handshake failed: x"), .refused, [], "TLS handshake failed"),
            ("method label", .welcome(welcome(methods: [badLabel]), saved: SentEvaluations()), .failure,
             [.send(.error(ErrorReport(code: "welcome_refused", message: AggregatorValueError.methodLabel(badLabel).description)))], "refusing the aggregator's WELCOME"),
            ("required file", .welcome(welcome(required: ["config.json", "evil.bin"]), saved: SentEvaluations()), .failure,
             [.send(.error(ErrorReport(code: "welcome_refused", message: AggregatorValueError.requiredFile("evil.bin").description)))], "evil.bin"),
        ]
        for row in rows {
            for once in [true, false] {
                var s = linked(once: once)
                let effects = run(&s, [row.event])
                XCTAssertEqual(s, .finished(row.exit), "\(row.name), once \(once)")
                XCTAssertEqual(actions(effects), row.actions, row.name)
                XCTAssertTrue(logs(effects).contains(row.log), "\(row.name): \(logs(effects))")
                XCTAssertEqual(step(s, .tick(now: 1000)).0, .finished(row.exit), "\(row.name): finished stays finished")
            }
        }
    }

    func testPeerChosenValuesAreEscapedInTheLog() {
        var s = linked()
        let effects = run(&s, [.message(.refused(Refused(reason: "no\nFORGED line")))])
        XCTAssertFalse(logs(effects).contains("\nFORGED"), logs(effects))
    }

    // MARK: WELCOME: uploads, or nothing

    func testWelcomeUploadsExactlyWhatTheAggregatorLacks() {
        let rows: [(name: String, welcome: Welcome, uploads: [String])] = [
            ("nothing stored", welcome(committed: []), all),
            ("statistics missing", welcome(committed: ["config.json", "model.safetensors"]), ["stats.safetensors"]),
            ("everything stored", welcome(committed: all), []),
            ("no statistics wanted", welcome(statistics: [], required: ["config.json", "model.safetensors"], committed: ["config.json"]), ["model.safetensors"]),
        ]
        for row in rows {
            var s = linked()
            var effects = run(&s, [.welcome(row.welcome, saved: SentEvaluations())])
            XCTAssertEqual(actions(effects), [.prepare(statistics: row.welcome.wantedStatistics)], row.name)
            guard case .preparing(_, let uploads) = s else { XCTFail("\(row.name): \(s)"); continue }
            XCTAssertEqual(uploads, row.uploads, row.name)
            effects = run(&s, [.prepared])
            for (i, file) in row.uploads.enumerated() {
                XCTAssertEqual(actions(effects), [.startUpload(file: file)], "\(row.name): \(file)")
                guard case .uploading(_, file, let remaining) = s else { XCTFail("\(row.name): \(s)"); break }
                XCTAssertEqual(remaining, Array(row.uploads.dropFirst(i + 1)), row.name)
                effects = run(&s, [.uploadCommitted(file: file, bytes: 10)])
            }
            // Then the agent's own model is scored.
            XCTAssertEqual(actions(effects), [.evaluate(round: 1, .local)], row.name)
            guard case .serving(let memory) = s else { XCTFail("\(row.name): \(s)"); continue }
            XCTAssertEqual(memory.worker, .evaluating(round: 1, .local), row.name)
        }
    }

    func testPreparationWaitsForARunningEvaluationAndAFailureEndsTheRun() {
        // The link broke while the own model was being scored; WELCOME of the same merge asks again.
        var s = serving()
        run(&s, [.linkLost(reason: "connection closed"), .tick(now: 102), .linkUp])
        var effects = run(&s, [.welcome(welcome(committed: all), saved: SentEvaluations())])
        XCTAssertEqual(actions(effects), [], "the worker is busy: no second job")
        effects = run(&s, [.evaluated(round: 1, label: "local", metrics: m1)])
        XCTAssertEqual(actions(effects), [.saveEvaluations(round: 1, SentEvaluations(metrics: ["local": m1])),
                                          .send(.eval(Eval(round: 1, method: "local", metrics: m1))),
                                          .prepare(statistics: [.gram])])
        effects = run(&s, [.prepareFailed(reason: "disk full")])
        XCTAssertEqual(s, .finished(.failure))
        XCTAssertEqual(actions(effects), [.send(.error(ErrorReport(code: "prepare_failed", message: "disk full")))])
    }

    // MARK: reconnects

    func testReconnectDuringUploadResumesFromWhatTheAggregatorCommitted() {
        var s = linked()
        run(&s, [.welcome(welcome(), saved: SentEvaluations()), .prepared, .uploadCommitted(file: "config.json", bytes: 10)])
        XCTAssertEqual(actions(run(&s, [.message(.resume(Resume(transferID: "t", offset: 0)))])), [.feedUpload(.resume(Resume(transferID: "t", offset: 0)))])
        guard case .uploading(_, "model.safetensors", ["stats.safetensors"]) = s else { return XCTFail("\(s)") }

        var effects = run(&s, [.tick(now: 110), .linkLost(reason: "heartbeat timeout")])
        XCTAssertEqual(actions(effects), [.dropLink, .connect(after: 1)])
        XCTAssertTrue(logs(effects).contains("link lost (heartbeat timeout); reconnecting in 1.0 s"), logs(effects))
        guard case .connecting(_, attempt: 1, since: 110) = s else { return XCTFail("\(s)") }
        effects = run(&s, [.tick(now: 111), .linkUp])
        XCTAssertEqual(actions(effects), [.sendHello])
        // The aggregator holds config.json: only the rest goes, model.safetensors first; its
        // RESUME carries the durable offset the new sender continues from.
        effects = run(&s, [.welcome(welcome(committed: ["config.json"]), saved: SentEvaluations())])
        XCTAssertEqual(actions(effects), [.prepare(statistics: [.gram])])
        effects = run(&s, [.prepared, .message(.resume(Resume(transferID: "t2", offset: 4 << 20)))])
        XCTAssertEqual(actions(effects), [.startUpload(file: "model.safetensors"), .feedUpload(.resume(Resume(transferID: "t2", offset: 4 << 20)))])
        guard case .uploading(_, "model.safetensors", ["stats.safetensors"]) = s else { return XCTFail("\(s)") }
    }

    func testWelcomeTimeoutCountsAsALostLinkAndTheOutageKeepsCounting() {
        var s = linked()           // attempt 0 since 100
        var effects = run(&s, [.tick(now: 129)])
        XCTAssertEqual(actions(effects), [], "29 s: still waiting")
        effects = run(&s, [.tick(now: 131)])
        XCTAssertEqual(actions(effects), [.dropLink, .connect(after: 1)])
        guard case .connecting(_, attempt: 1, since: 100) = s else { return XCTFail("\(s)") }
        // Linked again but lost before any WELCOME: the backoff goes on growing from the same outage.
        effects = run(&s, [.linkUp, .linkLost(reason: "connection closed")])
        XCTAssertEqual(actions(effects), [.sendHello, .dropLink, .connect(after: 2)])
        guard case .connecting(_, attempt: 2, since: 100) = s else { return XCTFail("\(s)") }
        // WELCOME ends the outage: the next loss starts again at 1 s.
        run(&s, [.linkUp, .welcome(welcome(committed: all), saved: SentEvaluations()), .tick(now: 140)])
        effects = run(&s, [.linkLost(reason: "connection closed")])
        XCTAssertEqual(actions(effects), [.dropLink, .connect(after: 1)])
        guard case .connecting(_, attempt: 1, since: 140) = s else { return XCTFail("\(s)") }
    }

    // MARK: backoff and the connect timeout

    func testBackoffDoublesFromOneSecondAndIsCappedAtSixtySeconds() {
        let rows: [(attempt: Int, delay: Double)] = [(0, 0), (1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 60), (8, 60), (60, 60), (1_000_000, 60), (Int.max, 60)]
        for row in rows { XCTAssertEqual(ReconnectBackoff.delay(attempt: row.attempt), row.delay, "attempt \(row.attempt)") }
    }

    /// An aggregator down for two hours: the enrolled agent keeps trying (1, 2, 4 … 60 s apart);
    /// with --once it gives up (exit 1) at the first failure after --connect-timeout.
    func testEnrolledAgentsRetryForeverWhileOnceGivesUpAfterTheConnectTimeout() {
        for once in [false, true] {
            var s = serving(once: once)
            var now = 200.0
            var delays: [Double] = []
            var effects = run(&s, [.tick(now: now), .linkLost(reason: "connection closed")])
            while case .connect(let after)? = actions(effects).last {
                delays.append(after)
                guard now < 200 + 7200 else { break }
                now += after + 10          // the wait, then a connect attempt that times out after 10 s
                effects = run(&s, [.tick(now: now), .linkLost(reason: "handshake timeout after 10 s")])
            }
            if once {
                XCTAssertEqual(s, .finished(.failure))
                XCTAssertEqual(actions(effects), [.dropLink])
                XCTAssertTrue(logs(effects).contains("giving up: no link to the aggregator for 6"), logs(effects))
                XCTAssertEqual(Array(delays.prefix(7)), [1, 2, 4, 8, 16, 32, 60])
            } else {
                guard case .connecting(_, let attempt, since: 200) = s else { XCTFail("\(s)"); continue }
                XCTAssertEqual(Array(delays.prefix(9)), [1, 2, 4, 8, 16, 32, 60, 60, 60])
                XCTAssertEqual(delays.count, attempt)
                XCTAssertGreaterThan(attempt, 100, "two hours of attempts")
                XCTAssertEqual(Set(delays.dropFirst(6)), [60])
                // And when the aggregator is back, the agent carries on with its merge.
                effects = run(&s, [.linkUp])
                XCTAssertEqual(actions(effects), [.sendHello])
            }
        }
    }

    // MARK: merged models

    func testDuplicateMergedForTheSameWeightsIsEvaluatedOnceAndItsEvalSentAgain() {
        var s = serving()
        run(&s, [.evaluated(round: 1, label: "local", metrics: m1), .message(.evaluated(Evaluated(round: 1, method: "local")))])
        var effects = run(&s, [.message(merged("regmean", sha: shaX))])
        let file = MergedFile(name: "regmean.safetensors", size: 1000, sha256: shaX)
        XCTAssertEqual(actions(effects), [.openDownload(round: 1, file: file)])
        let offer = Message.offer(Offer(transferID: "d1", name: file.name, size: file.size, sha256: shaX))
        XCTAssertEqual(actions(run(&s, [.message(offer)])), [.feedDownload(offer)])
        effects = run(&s, [.downloadCompleted(path: "/w/round-1/downloads/regmean.safetensors")])
        let job = PendingEvaluation(label: "regmean", weights: "/w/round-1/downloads/regmean.safetensors", headsPrefix: HeadsNaming.defaultPrefix, sha256: shaX)
        XCTAssertEqual(actions(effects), [.evaluate(round: 1, job)])
        effects = run(&s, [.evaluated(round: 1, label: "regmean", metrics: m2)])
        let saved = SentEvaluations(metrics: ["local": m1, "regmean": m2], acknowledged: ["local"], weights: ["regmean": shaX])
        XCTAssertEqual(actions(effects), [.saveEvaluations(round: 1, saved), .send(.eval(Eval(round: 1, method: "regmean", metrics: m2)))])

        // The same weights again (the EVALUATED was lost with a link): the EVAL goes again, no second scoring.
        effects = run(&s, [.message(merged("regmean", sha: shaX))])
        XCTAssertEqual(actions(effects), [.send(.eval(Eval(round: 1, method: "regmean", metrics: m2))), .openDownload(round: 1, file: file)])
        effects = run(&s, [.message(offer), .downloadCompleted(path: "/w/round-1/downloads/regmean.safetensors")])
        XCTAssertEqual(actions(effects), [.feedDownload(offer)], "received, not scored again")
        XCTAssertEqual(s.memory?.worker, .idle)
        // Acknowledged: the merge is settled and the enrolled agent asks for the next one.
        effects = run(&s, [.message(.evaluated(Evaluated(round: 1, method: "regmean")))])
        XCTAssertEqual(actions(effects), [.saveEvaluations(round: 1, SentEvaluations(metrics: saved.metrics, acknowledged: ["local", "regmean"], weights: saved.weights)), .sendHello])

        // Other weights under the same label (the merge was run again) are scored again.
        s = serving()
        run(&s, [.evaluated(round: 1, label: "local", metrics: m1), .message(merged("regmean", sha: shaX)), .downloadCompleted(path: "/a"),
                 .evaluated(round: 1, label: "regmean", metrics: m2), .message(.evaluated(Evaluated(round: 1, method: "regmean")))])
        effects = run(&s, [.message(merged("regmean", sha: shaY)), .downloadCompleted(path: "/b")])
        XCTAssertEqual(actions(effects), [.openDownload(round: 1, file: MergedFile(name: "regmean.safetensors", size: 1000, sha256: shaY)),
                                          .evaluate(round: 1, PendingEvaluation(label: "regmean", weights: "/b", headsPrefix: HeadsNaming.defaultPrefix, sha256: shaY))])
    }

    func testHostileMergedMessagesAreRefusedByNameAndOpenNoDownload() {
        let rows: [(name: String, message: Message, error: AggregatorValueError)] = [
            ("label", merged("../../victim", sha: shaX), .methodLabel("../../victim")),
            ("round", merged("regmean", round: 7, sha: shaX), .wrongRound(got: 7, admitted: 1)),
            ("method", merged("fisher", sha: shaX), .notARoundMethod("fisher", methods: ["regmean"])),
            ("size", merged("regmean", sha: shaX, size: 1 << 40), .tooLarge(method: "regmean", size: 1 << 40, limit: 2 * (1 << 20) + (64 << 20))),
            ("chunk without MERGED", .chunk(Chunk(transferID: "t", offset: 0), payload: Data([1])), .noDownload(.chunk)),
        ]
        for row in rows {
            var s = serving()
            let effects = run(&s, [.message(row.message)])
            XCTAssertEqual(actions(effects), [.send(.error(ErrorReport(code: "merged_refused", message: row.error.description)))], row.name)
            XCTAssertNil(served(s)?.download, row.name)
            guard case .serving = s else { XCTFail("\(row.name): a refused message does not end the agent: \(s)"); continue }
        }
        // An OFFER that is not the announced file.
        var s = serving()
        run(&s, [.message(merged("regmean", sha: shaX))])
        let effects = run(&s, [.message(.offer(Offer(transferID: "t", name: "regmean.safetensors", size: 1000, sha256: shaY)))])
        XCTAssertEqual(actions(effects), [.send(.error(ErrorReport(code: "merged_refused",
                                                                   message: AggregatorValueError.offerMismatch(name: "regmean.safetensors", announced: "regmean.safetensors").description)))])
    }

    // MARK: EVAL re-sends

    func testEvalIsSentAgainAfterEachReconnectUntilEvaluatedArrives() {
        var s = serving()
        run(&s, [.evaluated(round: 1, label: "local", metrics: m1)])
        let eval = AgentEffect.send(.eval(Eval(round: 1, method: "local", metrics: m1)))
        for pass in 0..<2 {
            run(&s, [.linkLost(reason: "connection closed"), .linkUp])
            let effects = run(&s, [.welcome(welcome(committed: all), saved: SentEvaluations())])
            XCTAssertEqual(actions(effects), [eval, .prepare(statistics: [.gram])], "pass \(pass): EVALUATED never came")
            run(&s, [.prepared])
        }
        run(&s, [.message(.evaluated(Evaluated(round: 1, method: "local")))])
        run(&s, [.linkLost(reason: "connection closed"), .linkUp])
        let effects = run(&s, [.welcome(welcome(committed: all), saved: SentEvaluations())])
        XCTAssertEqual(actions(effects), [.prepare(statistics: [.gram])], "acknowledged: not sent again")

        // A score that comes in while the link is down is saved, and sent with the next WELCOME.
        s = serving()
        var lost = run(&s, [.linkLost(reason: "connection closed"), .evaluated(round: 1, label: "local", metrics: m1)])
        XCTAssertEqual(actions(lost), [.dropLink, .connect(after: 1), .saveEvaluations(round: 1, SentEvaluations(metrics: ["local": m1]))])
        lost = run(&s, [.linkUp, .welcome(welcome(committed: all), saved: SentEvaluations())])
        XCTAssertEqual(actions(lost), [.sendHello, eval, .prepare(statistics: [.gram])])
        // Stray EVALUATEDs are ignored.
        lost = run(&s, [.prepared, .message(.evaluated(Evaluated(round: 1, method: "fisher"))), .message(.evaluated(Evaluated(round: 2, method: "local")))])
        XCTAssertEqual(actions(lost), [])
        XCTAssertEqual(served(s)?.evaluations.acknowledged, [])
    }

    // MARK: restart from disk

    /// A restarted agent starts from nothing but what `evals-sent.json` holds (the shell reads
    /// it into the WELCOME event) and the prepared model, which the prepare job reuses
    /// (ModelWork keys it by its inputs): no model is scored twice, unacknowledged EVALs go again.
    func testRestartFromDiskReevaluatesNothingAndResendsWhatWasNotAcknowledged() {
        let saved = SentEvaluations(metrics: ["local": m1, "regmean": m2], acknowledged: ["local"], weights: ["regmean": shaX])
        var s = linked(once: true)
        var effects = run(&s, [.welcome(welcome(methods: ["regmean", "fisher"], committed: all), saved: saved)])
        XCTAssertEqual(actions(effects), [.send(.eval(Eval(round: 1, method: "regmean", metrics: m2))), .prepare(statistics: [.gram])])
        effects = run(&s, [.prepared])
        XCTAssertEqual(actions(effects), [], "the own model was scored before the restart")
        XCTAssertEqual(served(s)?.evaluations, saved)
        effects = run(&s, [.message(merged("regmean", sha: shaX))])
        XCTAssertEqual(actions(effects).first, .send(.eval(Eval(round: 1, method: "regmean", metrics: m2))), "the same weights: not scored again")

        // Everything was acknowledged before the restart: nothing to do at all.
        let settled = SentEvaluations(metrics: ["local": m1, "regmean": m2], acknowledged: ["local", "regmean"])
        for once in [true, false] {
            var s = linked(once: once)
            let effects = run(&s, [.welcome(welcome(committed: all), saved: settled)])
            XCTAssertEqual(actions(effects), [], "once \(once)")
            XCTAssertEqual(s, once ? .finished(.success) : .enrolled(s.memory ?? AgentMemory(settings: settings(once: false)), nextHello: 115))
        }
    }

    // MARK: the end of a merge

    func testOnceFinishesAfterItsMergeWhileAnEnrolledAgentAsksForTheNext() {
        let rows: [(name: String, once: Bool, regmean: AgentEvent, state: (AgentState) -> Bool, actions: [AgentEffect])] = [
            ("once, all scored", true, .evaluated(round: 1, label: "regmean", metrics: m2), { $0 == .finished(.success) }, []),
            ("once, one failed", true, .evaluationFailed(round: 1, label: "regmean", reason: "tensor x has shape [3]"), { $0 == .finished(.failure) },
             [.send(.error(ErrorReport(code: "eval_failed", message: "tensor x has shape [3]", method: "regmean")))]),
            ("enrolled, all scored", false, .evaluated(round: 1, label: "regmean", metrics: m2),
             { if case .awaitingWelcome(_, 100, nil) = $0 { true } else { false } }, [.sendHello]),
            ("enrolled, one failed", false, .evaluationFailed(round: 1, label: "regmean", reason: "tensor x has shape [3]"),
             { if case .awaitingWelcome(_, 100, nil) = $0 { true } else { false } },
             [.send(.error(ErrorReport(code: "eval_failed", message: "tensor x has shape [3]", method: "regmean"))), .sendHello]),
        ]
        for row in rows {
            var s = serving(once: row.once)
            run(&s, [.evaluated(round: 1, label: "local", metrics: m1), .message(.evaluated(Evaluated(round: 1, method: "local"))),
                     .message(merged("regmean", sha: shaX)), .downloadCompleted(path: "/r")])
            var effects = run(&s, [row.regmean])
            if case .evaluated = row.regmean {
                XCTAssertEqual(actions(effects).last, .send(.eval(Eval(round: 1, method: "regmean", metrics: m2))), row.name)
                guard case .serving = s else { XCTFail("\(row.name): not settled before EVALUATED: \(s)"); continue }
                effects = run(&s, [.message(.evaluated(Evaluated(round: 1, method: "regmean")))])
                XCTAssertEqual(actions(effects).first, .saveEvaluations(round: 1, SentEvaluations(metrics: ["local": m1, "regmean": m2],
                                                                                                   acknowledged: ["local", "regmean"], weights: ["regmean": shaX])))
                effects = Array(effects.dropFirst())
            }
            XCTAssertTrue(row.state(s), "\(row.name): \(s)")
            XCTAssertEqual(actions(effects), row.actions, row.name)
            if row.name.hasSuffix("failed") { XCTAssertTrue(logs(effects).contains("1 evaluation(s) failed: regmean"), logs(effects)) }
        }
    }

    func testEnrolledAgentStaysAsksAgainAndServesTheNextMerge() {
        var s = serving(once: false)
        run(&s, [.evaluated(round: 1, label: "local", metrics: m1), .message(.evaluated(Evaluated(round: 1, method: "local"))),
                 .message(merged("regmean", sha: shaX)), .downloadCompleted(path: "/r"), .evaluated(round: 1, label: "regmean", metrics: m2),
                 .message(.evaluated(Evaluated(round: 1, method: "regmean")))])
        // The aggregator has nothing new: WELCOME of the same settled merge.
        var effects = run(&s, [.welcome(welcome(committed: all), saved: SentEvaluations())])
        XCTAssertEqual(actions(effects), [])
        guard case .enrolled(_, nextHello: 115) = s else { return XCTFail("\(s)") }
        XCTAssertEqual(actions(run(&s, [.tick(now: 114), .message(.heartbeat)])), [], "not yet")
        XCTAssertEqual(actions(run(&s, [.tick(now: 115)])), [.sendHello])
        // A new merge: its failures and queues start empty; the contribution is stored, nothing uploads.
        effects = run(&s, [.welcome(welcome(round: 2, methods: ["fisher"], statistics: [.fisher], committed: all), saved: SentEvaluations())])
        XCTAssertTrue(logs(effects).contains("next merge"), logs(effects))
        XCTAssertEqual(actions(effects), [.prepare(statistics: [.fisher])])
        guard case .preparing(let memory, uploads: []) = s else { return XCTFail("\(s)") }
        XCTAssertEqual(memory.served?.round, 2)
        XCTAssertEqual(memory.served?.evaluations, SentEvaluations())
        XCTAssertEqual(actions(run(&s, [.prepared])), [.evaluate(round: 2, .local)], "the own model is scored for this merge too")

        // Enrolled, a model of the served merge delivered again is served.
        s = serving(once: false)
        run(&s, [.evaluated(round: 1, label: "local", metrics: m1), .message(.evaluated(Evaluated(round: 1, method: "local"))),
                 .message(merged("regmean", sha: shaX)), .downloadCompleted(path: "/r"), .evaluationFailed(round: 1, label: "regmean", reason: "bad"),
                 .welcome(welcome(committed: all), saved: SentEvaluations())])
        guard case .enrolled = s else { return XCTFail("\(s)") }
        effects = run(&s, [.message(merged("regmean", sha: shaY))])
        guard case .serving = s else { return XCTFail("\(s)") }
        XCTAssertNil(served(s)?.failed["regmean"], "delivered again: tried again")
    }

    // MARK: secure merges

    private let plan = SecurePlan(methods: [SecurePlan.Method(label: "regmean", mergeMethod: "regmean", parameters: "{\"alpha\":0.5}")], upload: "masked-m1.bin")

    func testSecureMergeRunsKeysBoundsScaleThenTheMaskedUploadThenServes() {
        var s = linked(once: true)
        var w = welcome(required: [])
        w.secure = plan
        run(&s, [.welcome(w, saved: SentEvaluations())])
        var effects = run(&s, [.prepared])
        XCTAssertEqual(actions(effects), [.secureBegin(round: 1, merge: "m1", plan: plan)])
        XCTAssertEqual(s, .securing(s.memory!, step: .awaitingKeys))
        // A scale before the keys is not acted on.
        let scale = SecureScale(round: 1, merge: "m1", layoutDigest: "L", agents: ["a", "b"], fractionBits: [40], boundExponents: [3])
        effects = run(&s, [.message(.secureScale(scale))])
        XCTAssertEqual(actions(effects), [])
        let keys = SecureKeys(round: 1, merge: "m1", keys: [])
        effects = run(&s, [.message(.secureKeys(keys))])
        XCTAssertEqual(actions(effects), [.secureKeys(keys)])
        // Keys are checked and summands computed on the worker: the loop keeps the link's heartbeats.
        XCTAssertEqual(s, .securing(s.memory!, step: .computing))
        XCTAssertEqual(s.memory?.worker, .securing)
        XCTAssertEqual(actions(run(&s, [.message(.heartbeat), .tick(now: 130)])), [])
        XCTAssertEqual(actions(run(&s, [.message(.secureScale(scale))])), [], "no scale before this agent's bounds are out")
        let bounds = SecureBounds(round: 1, merge: "m1", layoutDigest: "L", boundExponents: [3])
        effects = run(&s, [.secureBoundsReady(bounds)])
        XCTAssertEqual(actions(effects), [.send(.secureBounds(bounds))])
        XCTAssertEqual(s, .securing(s.memory!, step: .awaitingScale))
        XCTAssertEqual(s.memory?.worker, .idle)
        effects = run(&s, [.message(.secureScale(scale))])
        XCTAssertEqual(actions(effects), [.secureScale(scale)])
        XCTAssertEqual(s.memory?.worker, .securing, "masking runs on the worker too")
        effects = run(&s, [.secureMasked(file: "masked-m1.bin", bytes: 4096)])
        XCTAssertEqual(actions(effects), [.startUpload(file: "masked-m1.bin")])
        effects = run(&s, [.uploadCommitted(file: "masked-m1.bin", bytes: 4096)])
        XCTAssertEqual(actions(effects), [.evaluate(round: 1, .local)])
        // After the upload, a reveal request goes to the shell's SecureExchange to decide.
        let request = RevealRequest(round: 1, merge: "m1", dropped: ["c"])
        effects = run(&s, [.message(.revealRequest(request))])
        XCTAssertEqual(actions(effects), [.secureReveal(request)])
    }

    /// MERGE_FAILED for the served secure merge, in every phase an agent waits in: `--once`
    /// exits 3 (the round failed), an enrolled agent waits for its next merge; the log names
    /// the merge and the reason; the shell ends the exchange. For another merge: ignored.
    func testAFailedSecureMergeEndsTheWaitInEveryPhase() {
        let failure = MergeFailed(round: 1, merge: "m1", reason: "fewer than min_agents (3) members remain")
        let scale = SecureScale(round: 1, merge: "m1", layoutDigest: "L", agents: ["a", "b"], fractionBits: [40], boundExponents: [3])
        let keys: [AgentEvent] = [.prepared, .message(.secureKeys(SecureKeys(round: 1, merge: "m1", keys: [])))]
        let scaled = keys + [.secureBoundsReady(SecureBounds(round: 1, merge: "m1", layoutDigest: "L", boundExponents: [3])), .message(.secureScale(scale))]
        let phases: [(String, [AgentEvent])] = [
            ("preparing", []),
            ("awaiting keys", [.prepared]),
            ("computing", keys),
            ("awaiting the scale", keys + [.secureBoundsReady(SecureBounds(round: 1, merge: "m1", layoutDigest: "L", boundExponents: [3]))]),
            ("masking", scaled),
            ("uploading", scaled + [.secureMasked(file: "masked-m1.bin", bytes: 4096)]),
            ("serving", scaled + [.secureMasked(file: "masked-m1.bin", bytes: 4096), .uploadCommitted(file: "masked-m1.bin", bytes: 4096)]),
        ]
        for (phase, events) in phases {
            for once in [true, false] {
                var s = linked(once: once)
                var w = welcome(required: [])
                w.secure = plan
                run(&s, [.welcome(w, saved: SentEvaluations())] + events)
                let before = s
                // Another merge's failure changes nothing.
                var effects = run(&s, [.message(.mergeFailed(MergeFailed(round: 2, merge: "m2", reason: "x")))])
                XCTAssertEqual(actions(effects), [], phase)
                XCTAssertEqual(s, before, phase)
                XCTAssertTrue(logs(effects).contains("ignoring MERGE_FAILED"), logs(effects))

                effects = run(&s, [.message(.mergeFailed(failure))])
                XCTAssertEqual(actions(effects), [.endMerge], "\(phase), once \(once)")
                XCTAssertTrue(logs(effects).contains("merge 'm1' (round 1) failed at the aggregator: fewer than min_agents (3) members remain"), logs(effects))
                if once {
                    XCTAssertEqual(s, .finished(.roundFailed), phase)
                } else {
                    guard case .enrolled(let memory, nextHello: 115) = s else { return XCTFail("\(phase): \(s)") }
                    XCTAssertEqual(memory.served?.queue, [], phase)
                    XCTAssertEqual(actions(run(&s, [.tick(now: 115)])), [.sendHello], "\(phase): it asks for its next merge")
                }
            }
        }
        // A WELCOME saying the secure merge already failed: nothing is prepared, no key is sent.
        for once in [true, false] {
            var s = linked(once: once)
            var w = welcome(required: [])
            w.secure = plan
            w.phase = .failed
            let effects = run(&s, [.welcome(w, saved: SentEvaluations())])
            XCTAssertEqual(actions(effects), [.endMerge])
            XCTAssertTrue(logs(effects).contains("merge 'm1' (round 1) failed at the aggregator"), logs(effects))
            if once { XCTAssertEqual(s, .finished(.roundFailed)) } else { guard case .enrolled = s else { return XCTFail("\(s)") } }
        }
    }

    func testSecureMergeAlreadyCommittedSkipsTheExchange() {
        var s = linked()
        var w = welcome(required: [], committed: ["masked-m1.bin"])
        w.secure = plan
        run(&s, [.welcome(w, saved: SentEvaluations())])
        XCTAssertEqual(actions(run(&s, [.prepared])), [.evaluate(round: 1, .local)])
    }

    func testARefusedKeyEndsTheRunNamingTheReason() {
        var s = linked(once: true)
        var w = welcome(required: [])
        w.secure = plan
        run(&s, [.welcome(w, saved: SentEvaluations()), .prepared])
        let effects = run(&s, [.secureFailed(reason: "the key of agent \"c\" comes with a certificate the federation CA did not issue")])
        XCTAssertEqual(s, .finished(.failure))
        XCTAssertTrue(logs(effects).contains("secure merge refused") && logs(effects).contains("federation CA did not issue"), logs(effects))
        guard case .send(.error(let report)) = actions(effects).first else { return XCTFail("\(effects)") }
        XCTAssertEqual(report.code, "secure_refused")
    }

    func testASecureUploadNameOtherThanTheMergesIsRefused() {
        var s = linked(once: true)
        var w = welcome(required: [])
        w.secure = SecurePlan(methods: plan.methods, upload: "../../model.safetensors")
        run(&s, [.welcome(w, saved: SentEvaluations())])
        XCTAssertEqual(s, .finished(.failure))
    }
}
