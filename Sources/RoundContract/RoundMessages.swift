// The headers of the messages a round consists of — who joins, what is wanted, what was
// merged, how it scored — typed, so both daemons read fields rather than parse text.
// The transfer messages (OFFER … COMMITTED) and the framing live in Protocol.

import Foundation

/// Agent → aggregator, first message on a link (and again on the same link to ask for the
/// next merge): who I am, which base model I tuned, which contribution I hold.
public struct Hello: Codable, Sendable, Equatable {
    public var name: String
    public var baseFingerprint: String
    public var protocolVersion: Int
    public var round: Int?
    /// SHA-256 (hex) of everything the agent's contribution depends on (base model, training
    /// data and settings, statistics settings). The aggregator stores one contribution per
    /// fingerprint and asks for an upload only when it lacks this one. nil: an agent that does
    /// not say; its contribution is stored as `ContributionFingerprint.unversioned`.
    public var contribution: String?
    /// Room for daemon-specific facts (architecture, …); nothing the round depends on.
    public var attributes: [String: String]

    public init(name: String, baseFingerprint: String, protocolVersion: Int = Int(ProtocolVersion.current), round: Int? = nil,
                contribution: String? = nil, attributes: [String: String] = [:]) {
        self.name = name
        self.baseFingerprint = baseFingerprint
        self.protocolVersion = protocolVersion
        self.round = round
        self.contribution = contribution
        self.attributes = attributes
    }
}

/// The contribution fingerprint rules both sides apply.
public enum ContributionFingerprint {
    /// What the aggregator files a contribution under when HELLO carries no fingerprint.
    public static let unversioned = "unversioned"
    /// 64 lowercase hex digits (a SHA-256), or `unversioned`: safe as a directory name.
    public static func isValid(_ text: String) -> Bool {
        text == unversioned || (text.count == 64 && text.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) })
    }
}

/// Where a merge stands, as WELCOME tells an agent.
public enum MergePhase: String, Codable, Sendable, Equatable {
    case collecting, merging, distributing, finished, failed
}

/// One merge an agent takes part in: it contributes to it (member of 𝒦), receives its models
/// (audience), or both.
public struct MergeMembership: Codable, Sendable, Equatable {
    public var round: Int
    public var name: String
    public var methods: [String]
    public var contributes: Bool
    public init(round: Int, name: String, methods: [String], contributes: Bool) {
        self.round = round
        self.name = name
        self.methods = methods
        self.contributes = contributes
    }
}

/// Aggregator → agent: admitted; this link serves merge `round` (named `merge`); send these
/// statistics; these files make a contribution and these the aggregator already holds.
public struct Welcome: Codable, Sendable, Equatable {
    public var round: Int
    public var merge: String
    public var wantedStatistics: [StatisticKind]
    public var methods: [String]
    /// The files of a contribution (config.json, model.safetensors, stats.safetensors when
    /// statistics are wanted) and those already committed for the agent's fingerprint.
    public var required: [String]
    public var committed: [String]
    public var phase: MergePhase
    /// Every merge the agent takes part in, this one first.
    public var merges: [MergeMembership]
    /// Set when this merge runs on masked sums (`secure: true`) and the agent is a member:
    /// what it must compute its summands for. Absent in the clear.
    public var secure: SecurePlan?

    public init(round: Int, merge: String = "", wantedStatistics: [StatisticKind], methods: [String], required: [String] = [],
                committed: [String] = [], phase: MergePhase = .collecting, merges: [MergeMembership] = [], secure: SecurePlan? = nil) {
        self.secure = secure
        self.round = round
        self.merge = merge
        self.wantedStatistics = wantedStatistics
        self.methods = methods
        self.required = required
        self.committed = committed
        self.phase = phase
        self.merges = merges
    }
}

/// Either side: the request (HELLO, OFFER, or the link itself) is refused, and why.
public struct Refused: Codable, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// One file of a merged model, as listed in MERGED.
public struct MergedFile: Codable, Sendable, Equatable {
    public var name: String
    public var size: UInt64
    public var sha256: String
    public init(name: String, size: UInt64, sha256: String) {
        self.name = name
        self.size = size
        self.sha256 = sha256
    }
}

/// Aggregator → agent: method `method` of merge `round` produced these files; OFFERs follow.
public struct Merged: Codable, Sendable, Equatable {
    public var round: Int
    public var method: String
    public var files: [MergedFile]
    /// The `merge_method` behind the label (e.g. "regmean" for "regmean-a0.5").
    public var mergeMethod: String
    /// With `heads: keep` the agent's own head is under `HeadsNaming.keptPrefix(agent:headsPrefix:)`.
    public var headsPrefix: String
    public init(round: Int, method: String, files: [MergedFile], mergeMethod: String = "", headsPrefix: String = HeadsNaming.defaultPrefix) {
        self.round = round
        self.method = method
        self.files = files
        self.mergeMethod = mergeMethod
        self.headsPrefix = headsPrefix
    }
}

/// Agent → aggregator: local test metrics of the merged model from `method` (or of its own
/// model: `ReservedLabel.local`).
public struct Eval: Codable, Sendable, Equatable {
    public var round: Int
    public var method: String
    public var metrics: [String: Double]
    public init(round: Int, method: String, metrics: [String: Double]) {
        self.round = round
        self.method = method
        self.metrics = metrics
    }
}

/// Aggregator → agent: the EVAL for `method` is durably recorded; the agent may stop
/// re-sending it (and exit once every method it was told of is acknowledged).
public struct Evaluated: Codable, Sendable, Equatable {
    public var round: Int
    public var method: String
    public init(round: Int, method: String) {
        self.round = round
        self.method = method
    }
}

/// Aggregator → the agents whose link serves merge `merge` (wire id `round`): the aggregator
/// gave it up (below min_agents, a member refused the secure exchange, the merge itself
/// failed), so nobody waits for keys, a scale or models that will not come. Sent for secure
/// merges; `reason` is the aggregator's own text (the merge record's).
public struct MergeFailed: Codable, Sendable, Equatable {
    public var round: Int
    public var merge: String
    public var reason: String
    public init(round: Int, merge: String, reason: String) {
        self.round = round
        self.merge = merge
        self.reason = reason
    }
}

/// Either side: something went wrong; `code` is machine-readable. `method` names the merged
/// model concerned when there is one (e.g. an agent's failed evaluation of it: code
/// `eval_failed`), so the aggregator can record that evaluation as failed instead of waiting.
public struct ErrorReport: Codable, Sendable, Equatable {
    public var code: String
    public var message: String
    public var method: String?
    public init(code: String, message: String, method: String? = nil) {
        self.code = code
        self.message = message
        self.method = method
    }
}
