// Everything the aggregator knows, as one value: per-agent store records, per-merge phases,
// per-link phases, and counters for the metrics. It changes only through `step(_:_:)`
// (AggregatorTransition.swift); the shell (AggregatorDaemon) turns sockets, the check and
// merge threads, the merge-file directory and the clock into `AggregatorEvent`s and carries
// out the `AggregatorEffect`s.
//
// Why a struct of per-link and per-merge enums rather than one enum: links and merges are
// independent machines that only share the contribution store — a link can be uploading
// while one merge is merging and another distributing. One enum over their product would
// spell out combinations that never interact.
//
// Per merge:  waiting ──all of 𝒦 ready (or quorum at the deadline)──▶ merging ──▶ distributing
//                └──too few agents──▶ failed                     every EVAL in (or eval_timeout) ──▶ finished
//             a changed merge file or a `forget` of a member: back to waiting, generation + 1
// Per link:   awaitingHello ──HELLO accepted──▶ welcomed(serving a merge, at most one download)

import DaemonSupport
import Foundation
import Logging
import Protocol

/// Whether a stored contribution passed the plausibility checks.
public enum Verdict: String, Sendable, Equatable, Codable {
    case unchecked, checking, passed
}

/// One contribution in the store: `store/<agent>/<fingerprint>/`.
public struct StoredContribution: Sendable, Equatable {
    public var files: Set<String> = []
    /// Statistic kinds its stats.safetensors holds.
    public var kinds: Set<StatisticKind> = []
    public var bytes: UInt64 = 0
    public var verdict: Verdict = .unchecked
    public init(files: Set<String> = [], kinds: Set<StatisticKind> = [], bytes: UInt64 = 0, verdict: Verdict = .unchecked) {
        self.files = files
        self.kinds = kinds
        self.bytes = bytes
        self.verdict = verdict
    }
}

/// What the aggregator holds of one agent.
public struct AgentRecord: Sendable, Equatable {
    /// By fingerprint; normally one, two while a new contribution replaces the old.
    public var contributions: [String: StoredContribution] = [:]
    /// The contribution merges use: the latest that passed the checks.
    public var current: String?
    /// Why its contribution was quarantined (it is refused until the operator clears it).
    public var quarantine: [String]?
    /// Clock value of the agent's last message.
    public var lastSeen: Double?
    /// The base-model fingerprint its HELLO declared, when it differs from the aggregator's
    /// (admitted only with `align`): its contribution is not measured against the aggregator's
    /// base, which it did not start from.
    public var otherBase: String?
    public init(contributions: [String: StoredContribution] = [:], current: String? = nil, quarantine: [String]? = nil) {
        self.contributions = contributions
        self.current = current
        self.quarantine = quarantine
    }
}

/// Where one merge stands. Members are a snapshot: agent → the fingerprint merged.
public enum MergePhaseState: Sendable, Equatable {
    case waiting(since: Double)
    case merging(members: [String: String], since: Double)
    case distributing(members: [String: String], since: Double)
    case finished(members: [String: String])
    case failed(reason: String)

    public var name: MergePhase {
        switch self {
        case .waiting: .collecting
        case .merging: .merging
        case .distributing: .distributing
        case .finished: .finished
        case .failed: .failed
        }
    }

    public var members: [String: String] {
        switch self {
        case .merging(let m, _), .distributing(let m, _), .finished(let m): m
        case .waiting, .failed: [:]
        }
    }
}

/// The EVALs, failed evaluations and deliveries of one merge (evals.json, eval-failures.json,
/// delivered.json in its output directory).
public struct MergeLedger: Sendable, Equatable, Codable {
    public var evaluations: [String: [String: [String: Double]]] = [:]   // agent → method → metric → value
    public var failures: [String: [String: String]] = [:]                 // agent → method → reason
    public var delivered: [String: [String]] = [:]                        // agent → methods received
    public init() {}

    public func isEvaluated(_ agent: String, _ label: String) -> Bool {
        evaluations[agent]?[label] != nil || failures[agent]?[label] != nil
    }
}

/// The durable record of a merge (`output/<name>/merge.json`): enough to resume after a restart.
public struct MergeRecord: Sendable, Equatable, Codable {
    public var name: String
    public var id: Int
    public var generation: Int
    public var digest: String
    public var phase: MergePhase
    public var members: [String: String]
    public var reason: String?
    /// For `fedmerge status`: the method labels and who evaluates them.
    public var methods: [String]
    public var audience: [String]?
    public init(name: String, id: Int, generation: Int, digest: String, phase: MergePhase, members: [String: String],
                reason: String? = nil, methods: [String] = [], audience: [String]? = nil) {
        self.name = name
        self.id = id
        self.generation = generation
        self.digest = digest
        self.phase = phase
        self.members = members
        self.reason = reason
        self.methods = methods
        self.audience = audience
    }
}

/// A secure merge's exchange while it collects (issue 13): the members' signed keys, whom
/// they were relayed to, the bounds, the scale fixed from them, and the masked uploads
/// committed. The aggregator holds public keys, exponents and masked words only.
public struct SecureProgress: Sendable, Equatable {
    public var keys: [String: SecureKey] = [:]
    /// The members whose keys went out in SECURE_KEYS (their masks are in the sums); nil before.
    public var relayed: [String]?
    public var bounds: [String: SecureBounds] = [:]
    public var scale: SecureScale?
    /// Agent → bytes of its committed masked upload.
    public var masked: [String: UInt64] = [:]
    /// Members left out at a deadline: before the scale (their masks never entered the
    /// uploads) or after it (their masks are removed with the survivors' revealed seeds).
    public var dropped: [String] = []
    /// The members REVEAL_REQUEST named (dropped after the scale was fixed); nil when none was sent.
    public var revealRequested: [String]?
    /// Survivor → dropped member → the pairwise seed it revealed (hex).
    public var reveals: [String: [String: String]] = [:]
    public init() {}
    /// What a secure merge's members map to instead of a store fingerprint.
    public static let maskedMember = "masked"
}

public struct MergeState: Sendable, Equatable {
    public var definition: MergeDefinition
    public var generation: Int
    public var phase: MergePhaseState
    public var ledger: MergeLedger
    public var secure = SecureProgress()

    public var record: MergeRecord {
        var reason: String?
        if case .failed(let why) = phase { reason = why }
        return MergeRecord(name: definition.name, id: definition.id, generation: generation, digest: definition.digest,
                           phase: phase.name, members: phase.members, reason: reason,
                           methods: definition.methods.map(\.label), audience: definition.audience)
    }
}

/// A merged model on its way to an agent.
public struct Download: Sendable, Equatable {
    public var merge: String
    public var label: String
}

public enum LinkPhase: Sendable, Equatable {
    case awaitingHello
    /// Admitted with contribution `fingerprint`; `serving` is the merge WELCOME named.
    case welcomed(fingerprint: String, serving: String, download: Download?)
}

public struct Link: Sendable, Equatable {
    public var agent: String
    public var phase: LinkPhase
    /// Merged models this link has received: merge → labels (a new link gets them again
    /// until the agent has evaluated them).
    public var delivered: [String: Set<String>] = [:]
}

/// Counters behind the metrics file.
public struct ServiceCounters: Sendable, Equatable {
    public var refusals: [String: Int] = [:]
    public var evalsReceived = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var mergeSeconds: [String: Double] = [:]   // "<merge>/<method>" → seconds
}

public struct AggregatorState: Sendable, Equatable {
    public var now: Double = 0
    public var allow: [String]
    public var baseFingerprint: String
    public var baseModel: String
    /// The aggregator's `align:` is set: a HELLO with another base fingerprint is admitted
    /// (architecture and vocabulary size are checked on the upload, alignment happens at merge).
    public var admitsOtherBases = false
    public var agents: [String: AgentRecord] = [:]
    /// The merges the merge files (and `round:`) define now, by name.
    public var merges: [String: MergeState] = [:]
    /// Merges known from disk (merge.json) that no file defines right now; a file naming one
    /// again resumes it.
    public var records: [String: MergeRecord] = [:]
    public var ledgers: [String: MergeLedger] = [:]
    public var forgotten: Set<String> = []
    public var links: [PeerID: Link] = [:]
    /// `--once`: exit when these merges are finished or failed (set by the first definitions).
    public var once: OnceGoal = .serveForever
    public var counters = ServiceCounters()

    public enum OnceGoal: Sendable, Equatable {
        case serveForever
        case awaitingDefinitions
        case merges(Set<String>)
        case exited
    }

    public init(allow: [String], baseFingerprint: String, baseModel: String, once: Bool = false) {
        self.allow = allow
        self.baseFingerprint = baseFingerprint
        self.baseModel = baseModel
        self.once = once ? .awaitingDefinitions : .serveForever
    }
}

/// What happened: the only way the state changes.
public enum AggregatorEvent: Sendable, Equatable {
    /// The clock moved (deadlines, eval timeouts).
    case tick(now: Double)
    /// The merges the files define now (after a change, SIGHUP, or at start).
    case definitions([MergeDefinition])
    case connected(PeerID, name: String)
    case disconnected(PeerID, reason: String, superseded: Bool)
    /// A TLS peer turned away before admission (for the refusal counters).
    case connectionRefused(reason: String)
    case message(PeerID, Message)
    /// The shell's ChunkReceiver committed `file` of the link's contribution.
    case uploadCommitted(PeerID, file: String, bytes: UInt64, kinds: Set<StatisticKind>)
    /// The shell's ChunkSender finished delivering the link's download.
    case downloadDelivered(PeerID, bytes: UInt64)
    /// A transfer on the link failed; `report` is what to tell the peer.
    case linkFailed(PeerID, error: String, report: Message)
    /// The check thread's verdict on a contribution (no reasons: it passed).
    case checked(agent: String, fingerprint: String, reasons: [String], distances: String)
    case mergeDone(merge: String, generation: Int, seconds: [String: Double])
    case mergeFailed(merge: String, generation: Int, reason: String)
    /// The operator asked to forget an agent (`fedmerge aggregator forget`).
    case forget(agent: String)
}

/// What the shell must do, in order. A failed durable write stops the rest of the step's
/// effects (so nothing is acknowledged that is not on disk).
public enum AggregatorEffect: Sendable, Equatable {
    case send(PeerID, Message)
    case disconnect(PeerID)
    /// Make the link's ChunkReceiver for `store/<agent>/<fingerprint>/`.
    case openUpload(PeerID, agent: String, fingerprint: String)
    /// Make the link's ChunkReceiver for a secure merge's masked upload:
    /// `secure/<merge>/g<generation>/<agent>/` in the spool, never the clear store.
    case openMaskedUpload(PeerID, agent: String, merge: String, generation: Int)
    case receiveUpload(PeerID, Message)
    /// Announce (MERGED) and start sending a merged model.
    case startDownload(PeerID, merge: String, label: String, announcement: Merged)
    case forwardDownload(PeerID, Message)
    case check(agent: String, fingerprint: String)
    case markChecked(agent: String, fingerprint: String)
    case quarantine(agent: String, fingerprint: String, reasons: [String])
    /// Move stats.safetensors aside (`.superseded/`): it lacks kinds a merge now needs.
    case retireStatistics(agent: String, fingerprint: String)
    case deleteContribution(agent: String, fingerprint: String)
    case saveForgotten([String])
    case completeForget(agent: String)
    /// Run the merge on the merge thread; `fresh`: remove merged models an earlier generation left.
    case startMerge(MergeDefinition, generation: Int, members: [String: String], fresh: Bool)
    case saveRecord(MergeRecord)
    case saveLedger(merge: String, MergeLedger)
    case writeReport(merge: String, missing: [String])
    case log(LogLine)
    case exit(DaemonExit)
}
