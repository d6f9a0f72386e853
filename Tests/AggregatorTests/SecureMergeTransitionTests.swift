// A secure merge through the aggregator's transition function with plain values: the WELCOME
// carries the plan and the link spools to the secure directory (never the store), keys are
// relayed once every member sent one, the scale once every bound is in, and only masked
// uploads reach the merge. Dropouts: silent before the bounds → left out of the scale; lost
// after it → REVEAL_REQUEST to the survivors; below min_agents → failed (exit 3 with --once).

@testable import Aggregator
import DaemonSupport
import Foundation
import Merge
import Protocol
import SecureSum
import XCTest

final class SecureMergeTransitionTests: XCTestCase {
    let base = String(repeating: "b", count: 64)
    let agents = ["a", "b", "c"]

    func peer(_ agent: String) -> PeerID { PeerID(Data(agent.utf8)) }

    func definition(minAgents: Int = 3) throws -> MergeDefinition {
        let average = MergeDefinition.MethodEntry(label: "average", choice: try MethodChoice(from: ["merge_method": .string("average")], file: "test"))
        let regmean = MergeDefinition.MethodEntry(label: "regmean", choice: try MethodChoice(from: ["merge_method": .string("regmean"), "parameters": .map(["alpha": .number(0.5)])], file: "test"))
        var d = MergeDefinition(name: "m", id: 1, file: "merges/m.yaml", subset: agents, audience: nil, minAgents: minAgents,
                                deadline: 100, evalTimeout: 50, heads: "average", methods: [average, regmean])
        d.secure = true
        return d
    }

    func sent(_ effects: [AggregatorEffect], to agent: String) -> [Message] {
        effects.compactMap { if case .send(let q, let m) = $0, q == peer(agent) { m } else { nil } }
    }

    func key(_ agent: String) -> SecureKey {
        SecureKey(round: 1, merge: "m", agent: agent, publicKey: "key-\(agent)", certificate: "pem-\(agent)", signature: "sig-\(agent)")
    }

    func bounds(_ exponents: [Int?]) -> SecureBounds { SecureBounds(round: 1, merge: "m", layoutDigest: "L", boundExponents: exponents) }

    /// Every member connected and admitted to the secure merge `m` at clock 0.
    func admitted(minAgents: Int = 3, once: Bool = false) throws -> (AggregatorState, [AggregatorEffect]) {
        var s = AggregatorState(allow: agents, baseFingerprint: base, baseModel: "base", once: once)
        var effects = run(&s, [.tick(now: 0), .definitions([try definition(minAgents: minAgents)])])
        for agent in agents {
            effects += run(&s, [.connected(peer(agent), name: agent),
                                .message(peer(agent), .hello(Hello(name: agent, baseFingerprint: base, contribution: String(repeating: "e", count: 64))))])
        }
        return (s, effects)
    }

    /// Keys and bounds from every member: the scale is out.
    func scaled(minAgents: Int = 3) throws -> AggregatorState {
        var (s, _) = try admitted(minAgents: minAgents)
        run(&s, agents.map { .message(peer($0), .secureKey(key($0))) })
        run(&s, agents.map { .message(peer($0), .secureBounds(bounds([3, nil]))) })
        XCTAssertNotNil(s.merges["m"]!.secure.scale)
        return s
    }

    func testWelcomeCarriesThePlanAndTheUploadGoesToTheSecureSpoolNotTheStore() throws {
        let (_, effects) = try admitted()
        for agent in agents {
            guard case .welcome(let welcome) = sent(effects, to: agent).first else { return XCTFail("no WELCOME for \(agent)") }
            XCTAssertEqual(welcome.required, [], "no clear file is asked for")
            XCTAssertEqual(welcome.wantedStatistics, [.gram], "the agent computes the Grams its summands need")
            XCTAssertEqual(welcome.secure?.upload, "masked-m.bin")
            XCTAssertEqual(welcome.secure?.methods.map(\.mergeMethod), ["average", "regmean"])
            let parameters = try JSONDecoder().decode([String: MergeValue].self, from: Data(welcome.secure!.methods[1].parameters.utf8))
            XCTAssertEqual(parameters["alpha"], .number(0.5))
        }
        XCTAssertTrue(effects.contains(.openMaskedUpload(peer("a"), agent: "a", merge: "m", generation: 0)))
        XCTAssertFalse(effects.contains { if case .openUpload = $0 { true } else { false } }, "no link opens the clear store")
    }

    func testKeysAreRelayedOnceAllAreInThenTheScaleThenOnlyMaskedUploadsAreMerged() throws {
        var (s, _) = try admitted()
        var effects = run(&s, [.message(peer("a"), .secureKey(key("a"))), .message(peer("b"), .secureKey(key("b")))])
        XCTAssertFalse(effects.contains { if case .send(_, .secureKeys) = $0 { true } else { false } }, "no relay before every key is in")
        effects = run(&s, [.message(peer("c"), .secureKey(key("c")))])
        for agent in agents {
            XCTAssertEqual(sent(effects, to: agent), [.secureKeys(SecureKeys(round: 1, merge: "m", keys: agents.map(key)))])
        }
        effects = run(&s, [.message(peer("a"), .secureBounds(bounds([3, nil]))), .message(peer("b"), .secureBounds(bounds([5, nil])))])
        XCTAssertTrue(sent(effects, to: "a").isEmpty)
        effects = run(&s, [.message(peer("c"), .secureBounds(bounds([4, nil])))])
        let scale = try RoundScale.fix(round: 1, merge: "m", bounds: ["a": bounds([3, nil]), "b": bounds([5, nil]), "c": bounds([4, nil])])
        XCTAssertEqual(scale.boundExponents, [5, nil])
        for agent in agents { XCTAssertEqual(sent(effects, to: agent), [.secureScale(scale)]) }

        // A clear file is refused on a secure member's link; the masked one goes to the receiver.
        let offer = Offer(transferID: "t", name: "model.safetensors", size: 10, sha256: String(repeating: "0", count: 64))
        effects = run(&s, [.message(peer("a"), .offer(offer))])
        XCTAssertTrue(effects.contains(.disconnect(peer("a"))), "\(effects)")
        run(&s, [.connected(peer("a"), name: "a"), .message(peer("a"), .hello(Hello(name: "a", baseFingerprint: base, contribution: String(repeating: "e", count: 64))))])
        effects = run(&s, agents.map { .uploadCommitted(peer($0), file: "masked-m.bin", bytes: 1000, kinds: []) })
        XCTAssertTrue(effects.contains(.startMerge(try definition(), generation: 0, members: ["a": "masked", "b": "masked", "c": "masked"], fresh: true)), "\(effects)")
        XCTAssertFalse(effects.contains { if case .check = $0 { true } else { false } })
        XCTAssertEqual(s.merges["m"]!.secure.masked, ["a": 1000, "b": 1000, "c": 1000])
    }

    func testAKeyClaimingAnotherAgentDropsTheLink() throws {
        var (s, _) = try admitted()
        let effects = run(&s, [.message(peer("a"), .secureKey(key("b")))])
        XCTAssertTrue(effects.contains(.disconnect(peer("a"))))
        XCTAssertTrue(s.merges["m"]!.secure.keys.isEmpty)
    }

    func testAMemberRefusingTheKeysFailsTheMergeAtOnceNamingItAndTheReason() throws {
        var (s, _) = try admitted()
        run(&s, agents.map { .message(peer($0), .secureKey(key($0))) })
        let effects = run(&s, [.message(peer("a"), .error(ErrorReport(code: "secure_refused", message: "the key of agent \"c\" comes with a certificate the federation CA did not issue")))])
        XCTAssertTrue(effects.contains(.saveRecord(s.merges["m"]!.record)), "the failure is durable")
        guard case .failed(let reason) = s.merges["m"]!.phase else { return XCTFail("\(s.merges["m"]!.phase)") }
        XCTAssertTrue(reason.contains("refused by a") && reason.contains("federation CA did not issue"), reason)
        for agent in agents { XCTAssertEqual(sent(effects, to: agent), [.mergeFailed(MergeFailed(round: 1, merge: "m", reason: reason))], agent) }
    }

    func testASilentMemberBeforeItsBoundsIsLeftOutOfTheScale() throws {
        var (s, _) = try admitted(minAgents: 2)
        run(&s, agents.map { .message(peer($0), .secureKey(key($0))) })
        run(&s, ["a", "b"].map { .message(peer($0), .secureBounds(bounds([3]))) })
        let effects = run(&s, [.tick(now: 101)])
        let scale = try XCTUnwrap(s.merges["m"]!.secure.scale)
        XCTAssertEqual(scale.agents, ["a", "b"])
        XCTAssertEqual(sent(effects, to: "a"), [.secureScale(scale)])
        XCTAssertEqual(s.merges["m"]!.secure.dropped, ["c"])
        // The next step has a deadline of its own: not failed right away.
        XCTAssertEqual(s.merges["m"]!.phase, .waiting(since: 101))
    }

    func testALostMemberAfterTheScaleIsUnmaskedWithTheSurvivorsReveals() throws {
        var s = try scaled(minAgents: 2)
        run(&s, ["a", "b"].map { .uploadCommitted(peer($0), file: "masked-m.bin", bytes: 1000, kinds: []) })
        var effects = run(&s, [.tick(now: 101)])
        for agent in ["a", "b"] { XCTAssertEqual(sent(effects, to: agent), [.revealRequest(RevealRequest(round: 1, merge: "m", dropped: ["c"]))]) }
        XCTAssertEqual(sent(effects, to: "c"), [])
        // A reveal of other seeds than asked is refused.
        effects = run(&s, [.message(peer("a"), .reveal(Reveal(round: 1, merge: "m", agent: "a", seeds: ["b": "00"])))])
        XCTAssertTrue(effects.contains(.disconnect(peer("a"))))
        run(&s, [.connected(peer("a"), name: "a"), .message(peer("a"), .hello(Hello(name: "a", baseFingerprint: base, contribution: String(repeating: "e", count: 64))))])
        effects = run(&s, [.message(peer("a"), .reveal(Reveal(round: 1, merge: "m", agent: "a", seeds: ["c": "aa"])))])
        XCTAssertFalse(effects.contains { if case .startMerge = $0 { true } else { false } }, "b has not revealed yet")
        effects = run(&s, [.message(peer("b"), .reveal(Reveal(round: 1, merge: "m", agent: "b", seeds: ["c": "bb"])))])
        XCTAssertTrue(effects.contains(.startMerge(try definition(minAgents: 2), generation: 0, members: ["a": "masked", "b": "masked"], fresh: true)), "\(effects)")
        XCTAssertEqual(s.merges["m"]!.secure.reveals, ["a": ["c": "aa"], "b": ["c": "bb"]])
    }

    func testTooFewSurvivorsFailTheMergeAndEndAOnceRunWithExit3() throws {
        var s = AggregatorState(allow: agents, baseFingerprint: base, baseModel: "base", once: true)
        run(&s, [.tick(now: 0), .definitions([try definition(minAgents: 3)])])
        for agent in agents {
            run(&s, [.connected(peer(agent), name: agent),
                     .message(peer(agent), .hello(Hello(name: agent, baseFingerprint: base, contribution: String(repeating: "e", count: 64))))])
        }
        run(&s, agents.map { .message(peer($0), .secureKey(key($0))) })
        run(&s, agents.map { .message(peer($0), .secureBounds(bounds([3]))) })
        run(&s, ["a", "b"].map { .uploadCommitted(peer($0), file: "masked-m.bin", bytes: 1000, kinds: []) })
        let effects = run(&s, [.tick(now: 101)])
        guard case .failed(let reason) = s.merges["m"]!.phase else { return XCTFail("\(s.merges["m"]!.phase)") }
        XCTAssertTrue(reason.contains("masked uploads of c") && reason.contains("min_agents (3)") && reason.contains("secure/m/"), reason)
        XCTAssertTrue(effects.contains(.exit(.roundFailed)))
        // Every agent still linked to the merge is told, with the record's reason.
        for agent in agents { XCTAssertEqual(sent(effects, to: agent), [.mergeFailed(MergeFailed(round: 1, merge: "m", reason: reason))], agent) }
    }
}
