// WelcomePlan driven through a table of WELCOMEs and agent memories, no sockets: what to
// upload (required − committed), which EVALs go again after a reconnect, when a merge is
// settled (acknowledged or failed), and what a settled merge means with and without --once.

@testable import Agent
import Protocol
import XCTest

final class WelcomePlanTests: XCTestCase {
    private let all = ["config.json", "model.safetensors", "stats.safetensors"]

    private func welcome(round: Int = 1, methods: [String] = ["regmean", "fisher"], committed: [String] = []) -> Welcome {
        Welcome(round: round, merge: "m\(round)", wantedStatistics: [.gram], methods: methods, required: all, committed: committed)
    }

    func testScenarios() {
        let m = ["accuracy": 0.75]
        struct Row {
            var name: String
            var welcome: Welcome
            var served: Int?
            var sent: [String: [String: Double]] = [:]
            var acknowledged: Set<String> = []
            var failed: Set<String> = []
            var once = false
            var expected: WelcomePlan
        }
        let rows: [Row] = [
            Row(name: "first admission, nothing stored: upload everything, prepare",
                welcome: welcome(), served: nil,
                expected: WelcomePlan(newRound: false, resend: [], uploads: all, next: .prepare)),
            Row(name: "the aggregator holds the fingerprint: upload nothing, still prepare (local evaluation)",
                welcome: welcome(committed: all), served: nil,
                expected: WelcomePlan(newRound: false, resend: [], uploads: [], next: .prepare)),
            Row(name: "reconnect after a partial upload: only the missing file",
                welcome: welcome(committed: ["config.json", "model.safetensors"]), served: 1,
                expected: WelcomePlan(newRound: false, resend: [], uploads: ["stats.safetensors"], next: .prepare)),
            Row(name: "reconnect with an EVAL whose EVALUATED was lost: it goes again",
                welcome: welcome(committed: all), served: 1, sent: ["local": m, "regmean": m], acknowledged: ["local"],
                expected: WelcomePlan(newRound: false, resend: [Eval(round: 1, method: "regmean", metrics: m)], uploads: [], next: .prepare)),
            Row(name: "everything acknowledged, --once: finish",
                welcome: welcome(committed: all), served: nil, sent: ["local": m, "regmean": m, "fisher": m],
                acknowledged: ["local", "regmean", "fisher"], once: true,
                expected: WelcomePlan(newRound: false, resend: [], uploads: [], next: .finish)),
            Row(name: "everything acknowledged, enrolled: keep the link",
                welcome: welcome(committed: all), served: 1, sent: ["local": m, "regmean": m, "fisher": m],
                acknowledged: ["local", "regmean", "fisher"],
                expected: WelcomePlan(newRound: false, resend: [], uploads: [], next: .stayEnrolled)),
            Row(name: "a failed evaluation settles its model in the same merge",
                welcome: welcome(committed: all), served: 1, sent: ["local": m, "regmean": m], acknowledged: ["local", "regmean"],
                failed: ["fisher"], once: true,
                expected: WelcomePlan(newRound: false, resend: [], uploads: [], next: .finish)),
            Row(name: "the next merge: the last merge's failure does not settle a model of the new one",
                welcome: welcome(round: 2, methods: ["fisher"], committed: all), served: 1, sent: ["local": m], acknowledged: ["local"],
                failed: ["fisher"],
                expected: WelcomePlan(newRound: true, resend: [], uploads: [], next: .prepare)),
            Row(name: "the next merge asks for statistics the stored contribution lacks",
                welcome: welcome(round: 2, committed: ["config.json", "model.safetensors"]), served: 1,
                expected: WelcomePlan(newRound: true, resend: [], uploads: ["stats.safetensors"], next: .prepare)),
        ]
        for row in rows {
            let plan = WelcomePlan.plan(row.welcome, servedRound: row.served, sent: row.sent, acknowledged: row.acknowledged,
                                        failed: row.failed, once: row.once)
            XCTAssertEqual(plan, row.expected, row.name)
        }
    }

    func testOwnModelMustBeSettledToo() {
        XCTAssertFalse(WelcomePlan.allSettled(methods: ["regmean"], acknowledged: ["regmean"], failed: []), "local is missing")
        XCTAssertTrue(WelcomePlan.allSettled(methods: ["regmean"], acknowledged: ["regmean"], failed: [ReservedLabel.local]))
        XCTAssertTrue(WelcomePlan.allSettled(methods: [], acknowledged: [ReservedLabel.local], failed: []))
    }
}
