// Everything the agent daemon knows, as one value: `AgentState`, an enum whose case says
// where the agent stands with its aggregator. It changes only through `step(_:_:)`
// (AgentTransition.swift); the shell (AgentDaemon) turns the link, the worker thread, the
// disk and the clock into `AgentEvent`s and carries out the `AgentEffect`s.
//
// The states (every case but `finished` carries the `AgentMemory` below):
//   starting ──started──▶ connecting(attempt: 0)
//   connecting(attempt, since) ──linkUp──▶ awaitingWelcome(sentAt, outage)      (HELLO sent)
//   awaitingWelcome ──WELCOME with work left──▶ preparing(uploads)              (worker: prepare)
//                   ──WELCOME, all settled──▶ enrolled(nextHello)  ·  with --once: finished
//   preparing ──prepared──▶ uploading(file, remaining) ──last COMMITTED──▶ serving
//             └──prepared, a secure merge──▶ securing(awaitingKeys) ──SECURE_KEYS──▶ securing(computing)
//                 ──bounds ready──▶ securing(awaitingScale) ──SECURE_SCALE──▶ securing(masking)
//                 ──masked──▶ uploading(masked-<merge>.bin)      (computing and masking on the worker)
//             └──nothing to upload──────────────────────────────────────▶ serving
//   serving ──every model evaluated and acknowledged, or failed──▶ finished (--once)
//                                                               └─▶ awaitingWelcome (HELLO again on the link)
//   enrolled ──nextHello──▶ awaitingWelcome;  enrolled ──MERGED──▶ serving
//   any state with a link ──link lost──▶ connecting(attempt + 1), after ReconnectBackoff;
//       with --once: finished(failure) once --connect-timeout has passed since the loss.
//   MERGE_FAILED for the served merge (any admitted state), or a WELCOME saying a secure merge
//       failed ──▶ finished(roundFailed) with --once, else enrolled (HELLO after the interval);
//   REFUSED, a refused certificate or handshake ──▶ finished(refused);
//   a WELCOME value the agent will not take, a failed preparation, a local I/O failure ──▶ finished(failure).
//
// Why downloads and evaluations are fields of the memory, not cases: a merged model arrives
// while another is being scored, and a worker job outlives a broken link, so cases for them
// would have to spell out their product with the link's phase. `WorkerJob` says what the one
// worker thread runs; `ServedMerge.download` the merged model on its way; `ServedMerge.queue`
// the models waiting for the worker.

import DaemonSupport
import Foundation
import Protocol

/// The agent's knobs the transition needs (the rest of its config only the shell uses).
struct AgentSettings: Sendable, Equatable {
    /// `--once`: serve one merge, then exit; and give up after `connectTimeout` without a link.
    var once = false
    /// Seconds without a link after which a `--once` agent gives up (exit 1).
    var connectTimeout: Double = 600
    /// Enrolled: seconds between HELLOs asking whether a next merge has work for this agent.
    var helloInterval: Double = 15
    /// Seconds to wait for WELCOME after HELLO before counting the link as lost.
    var welcomeTimeout: Double = 30
    /// The base model's weights file size: bounds what a MERGED may announce.
    var baseModelBytes: UInt64 = 0
}

/// The EVALs made for one merge and those the aggregator acknowledged (EVALUATED), kept in
/// `<workdir>/round-<id>/evals-sent.json` so a restart neither re-evaluates nor forgets to re-send.
struct SentEvaluations: Codable, Sendable, Equatable {
    var metrics: [String: [String: Double]] = [:]
    /// Sorted labels.
    var acknowledged: [String] = []
    /// Label → SHA-256 of the merged weights that were scored: the same weights delivered
    /// again are not scored again (absent in files older than this field).
    var weights: [String: String]? = nil
    /// The merge these EVALs belong to (absent in older files): a merge id can be reused by
    /// another aggregator or another merge file, whose models these EVALs never scored.
    var merge: String? = nil

    func isAcknowledged(_ label: String) -> Bool { acknowledged.contains(label) }

    mutating func acknowledge(_ label: String) {
        if !acknowledged.contains(label) { acknowledged = (acknowledged + [label]).sorted() }
    }

    func weightsScored(_ label: String) -> String? { weights?[label] }
}

/// A merged model MERGED announced and the shell is receiving.
struct IncomingModel: Sendable, Equatable {
    var label: String
    var headsPrefix: String
    var file: MergedFile
}

/// A model waiting for (or on) the worker: the agent's own (`weights` nil) or a received
/// merged weights file, assembled into `round-<id>/merged/<label>` before it is scored.
struct PendingEvaluation: Sendable, Equatable {
    var label: String
    var weights: String?
    var headsPrefix: String = ""
    var sha256: String?

    static var local: PendingEvaluation { PendingEvaluation(label: ReservedLabel.local) }
}

/// The one background job: preparing (fine-tune or load, statistics) or scoring a model.
enum WorkerJob: Sendable, Equatable {
    case idle
    case preparing
    case evaluating(round: Int, PendingEvaluation)
    /// A secure merge's keys checked and summands computed, or its summands masked: seconds on
    /// MiniLM, so off the loop that keeps the link's heartbeats.
    case securing
}

/// The merge this agent serves: the WELCOME that named it and everything about its models.
struct ServedMerge: Sendable, Equatable {
    var welcome: Welcome
    var evaluations = SentEvaluations()
    /// Models this run could not evaluate, with why (not persisted: a restart tries again).
    var failed: [String: String] = [:]
    var download: IncomingModel?
    var queue: [PendingEvaluation] = []

    var round: Int { welcome.round }
}

/// What every state but `finished` carries.
struct AgentMemory: Sendable, Equatable {
    var settings: AgentSettings
    /// The clock, as the last `tick` gave it (seconds).
    var now: Double = 0
    var served: ServedMerge?
    var worker: WorkerJob = .idle
}

/// How long the agent has been without a working link: attempts made and since when.
struct Outage: Sendable, Equatable {
    var attempt: Int
    var since: Double
}

enum AgentState: Sendable, Equatable {
    case starting(AgentMemory)
    /// Waiting `ReconnectBackoff.delay(attempt:)`, then opening a link (the shell's `connect` effect).
    case connecting(AgentMemory, attempt: Int, since: Double)
    /// HELLO sent at `sentAt`; `outage` when the link is new (it ends with the WELCOME).
    case awaitingWelcome(AgentMemory, sentAt: Double, outage: Outage?)
    /// The worker prepares the model and statistics; then `uploads` go, in order.
    case preparing(AgentMemory, uploads: [String])
    /// `file` is on its way (the shell's ChunkSender); `remaining` follow.
    case uploading(AgentMemory, file: String, remaining: [String])
    /// A secure merge's exchange (SECURE_KEY sent; keys, then the scale awaited; masking).
    case securing(AgentMemory, step: SecureStep)
    /// The contribution is in: receiving and evaluating the merge's models until all are settled.
    case serving(AgentMemory)
    /// Every model of the served merge is settled (no `--once`): the link stays up and at
    /// `nextHello` a HELLO on it asks for the next merge.
    case enrolled(AgentMemory, nextHello: Double)
    case finished(DaemonExit)

    var memory: AgentMemory? {
        switch self {
        case .starting(let m), .connecting(let m, _, _), .awaitingWelcome(let m, _, _), .preparing(let m, _),
             .uploading(let m, _, _), .securing(let m, _), .serving(let m), .enrolled(let m, _): m
        case .finished: nil
        }
    }

    /// Whether messages may go to the aggregator: a link is up and WELCOME admitted the agent.
    var isAdmitted: Bool {
        switch self {
        case .preparing, .uploading, .securing, .serving, .enrolled: true
        case .starting, .connecting, .awaitingWelcome, .finished: false
        }
    }

    /// The same phase with `memory` in it.
    func with(_ memory: AgentMemory) -> AgentState {
        switch self {
        case .starting: .starting(memory)
        case .connecting(_, let attempt, let since): .connecting(memory, attempt: attempt, since: since)
        case .awaitingWelcome(_, let sentAt, let outage): .awaitingWelcome(memory, sentAt: sentAt, outage: outage)
        case .preparing(_, let uploads): .preparing(memory, uploads: uploads)
        case .uploading(_, let file, let remaining): .uploading(memory, file: file, remaining: remaining)
        case .securing(_, let step): .securing(memory, step: step)
        case .serving: .serving(memory)
        case .enrolled(_, let nextHello): .enrolled(memory, nextHello: nextHello)
        case .finished: self
        }
    }
}

/// Where a secure merge's exchange stands (the secrets live in the shell's SecureExchange).
enum SecureStep: Sendable, Equatable {
    case awaitingKeys
    /// The worker verifies the relayed keys and computes the summands (then SECURE_BOUNDS).
    case computing
    case awaitingScale
    case masking
}

/// What happened: the only way the state changes.
enum AgentEvent: Sendable, Equatable {
    /// The clock moved (WELCOME timeout, enrolled HELLOs, the connect timeout).
    case tick(now: Double)
    case started
    /// The link is up (TLS done, admitted by the server's first heartbeat).
    case linkUp
    /// The link failed or could not be made; `reason` is escaped.
    case linkLost(reason: String)
    /// The aggregator refused this agent's certificate, or the TLS handshake failed.
    case linkRefused(reason: String)
    /// WELCOME, with what `round-<id>/evals-sent.json` of its round holds (the shell reads it).
    case welcome(Welcome, saved: SentEvaluations)
    /// Any other message from the aggregator.
    case message(Message)
    case prepared
    case prepareFailed(reason: String)
    /// The shell's ChunkSender saw COMMITTED for `file`.
    case uploadCommitted(file: String, bytes: UInt64)
    /// The shell's ChunkReceiver completed the announced merged weights at `path`.
    case downloadCompleted(path: String)
    /// The ChunkReceiver refused a message of the download; `report` tells the aggregator.
    case downloadRefused(reason: String, report: Message)
    case evaluated(round: Int, label: String, metrics: [String: Double])
    case evaluationFailed(round: Int, label: String, reason: String)
    /// The worker verified the relayed keys and computed the summands: SECURE_BOUNDS to send.
    case secureBoundsReady(SecureBounds)
    /// The shell wrote the masked upload `file` (prepared/) of a secure merge.
    case secureMasked(file: String, bytes: Int)
    /// A step of the secure exchange failed: a relayed key did not verify, the scale was refused, …
    case secureFailed(reason: String)
    /// The shell could not carry out an effect on local files (read an upload, save EVALs).
    case localFailure(reason: String)
}

/// What the shell must do, in order.
enum AgentEffect: Sendable, Equatable {
    /// Open a new link after waiting `after` seconds; the shell answers linkUp, linkLost or linkRefused.
    case connect(after: Double)
    /// HELLO with the agent's name, base model fingerprint and contribution fingerprint.
    case sendHello
    case send(Message)
    /// Close the link (it failed, or the agent gives up on it); transfers on it end.
    case dropLink
    case prepare(statistics: [StatisticKind])
    /// Make a ChunkSender for `prepared/<file>` and OFFER it (the aggregator RESUMEs from its durable offset).
    case startUpload(file: String)
    /// RESUME, ACK or COMMITTED for the ChunkSender.
    case feedUpload(Message)
    /// Make the ChunkReceiver for the announced merged weights under `round-<round>/downloads`.
    case openDownload(round: Int, file: MergedFile)
    /// OFFER, CHUNK or COMMIT for the ChunkReceiver.
    case feedDownload(Message)
    /// On the worker: assemble (merged weights) and score the model on the local test split.
    case evaluate(round: Int, PendingEvaluation)
    case saveEvaluations(round: Int, SentEvaluations)
    /// Secure merge: make this round's key pair and send SECURE_KEY.
    case secureBegin(round: Int, merge: String, plan: SecurePlan)
    /// On the worker: verify the relayed keys, compute the summands (answers secureBoundsReady).
    case secureKeys(SecureKeys)
    /// On the worker: check the scale, encode and mask, write the upload (answers secureMasked).
    case secureScale(SecureScale)
    /// Answer REVEAL_REQUEST with the seeds shared with the dropped members (SecureExchange decides).
    case secureReveal(RevealRequest)
    /// The served merge failed at the aggregator: forget its secure exchange and any upload on its way.
    case endMerge
    case log(LogLine)
}
