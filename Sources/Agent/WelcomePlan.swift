// What the agent does when a WELCOME arrives, decided by a pure function of the WELCOME and
// what the agent remembers (the round it served, the EVALs it made and had acknowledged, the
// evaluations that failed), so tests drive it with plain values. The agent's transition
// (AgentTransition.swift) turns the plan into its next state and effects.

import Protocol

struct WelcomePlan: Equatable {
    enum Next: Equatable {
        /// Every model of this merge is settled and the agent runs `--once`: end the run.
        case finish
        /// Every model is settled and the agent is enrolled: keep the link, ask again later.
        case stayEnrolled
        /// Prepare the model (reused from disk when its inputs match), upload `uploads`, evaluate.
        case prepare
    }

    /// A different merge than the one served before: its failures, queues and downloads are dropped.
    var newRound: Bool
    /// EVALs made but not acknowledged (a broken link may have swallowed EVALUATED): sent again.
    var resend: [Eval]
    /// The contribution files the aggregator lacks for this agent's fingerprint (required − committed).
    var uploads: [String]
    var next: Next

    /// `failed` is forgotten when the round changes (a failure belongs to its merge).
    static func plan(_ welcome: Welcome, servedRound: Int?, sent: [String: [String: Double]], acknowledged: Set<String>,
                     failed: Set<String>, once: Bool) -> WelcomePlan {
        let newRound = servedRound != nil && servedRound != welcome.round
        let failed = newRound ? [] : failed
        let resend = sent.sorted { $0.key < $1.key }.filter { !acknowledged.contains($0.key) }.map { Eval(round: welcome.round, method: $0.key, metrics: $0.value) }
        let settled = allSettled(methods: welcome.methods, acknowledged: acknowledged, failed: failed)
        return WelcomePlan(newRound: newRound, resend: resend,
                           uploads: settled ? [] : welcome.required.filter { !welcome.committed.contains($0) },
                           next: settled ? (once ? .finish : .stayEnrolled) : .prepare)
    }

    /// Every model of the merge (the agent's own, `ReservedLabel.local`, and each method's) is
    /// evaluated and acknowledged by the aggregator, or failed.
    static func allSettled(methods: [String], acknowledged: Set<String>, failed: Set<String>) -> Bool {
        ([ReservedLabel.local] + methods).allSatisfy { acknowledged.contains($0) || failed.contains($0) }
    }
}
