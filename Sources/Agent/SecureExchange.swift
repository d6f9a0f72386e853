// SecureExchange: the agent's side of one secure merge, held by the shell (AgentDaemon) because
// it owns secrets the pure transition must never carry: the X25519 private key, the pairwise
// seeds and the unmasked summands. Three steps, each answering one aggregator message:
//   begin         → SECURE_KEY   (a fresh key pair, signed with the TLS certificate's key)
//   keysReceived  → SECURE_BOUNDS (every relayed key verified against the federation CA, seeds
//                                  derived, summands of every method computed, bounds reported)
//   scaleReceived → masked-<merge>.bin in prepared/ (scale checked, encoded, masked), uploaded
//                   through the ordinary resumable chunk path. Under heads: keep this agent's
//                   own head travels in the clear beside the masked words: it is this agent's
//                   alone (every member gets it back in the merged model, as in the clear mode).
//
//   reveal        → REVEAL (members dropped after the scale: the seeds shared with them).
// keysReceived and scaleReceived take seconds on MiniLM and run on the agent's worker thread,
// so the link keeps its heartbeats (on the loop they stalled it past the 10 s heartbeat timeout
// on a loaded machine, and the aggregator dropped every member mid-exchange).
//
// The reveal's caveat (Bonawitz et al. 2017): an agent cannot tell a member that really
// dropped from one the aggregator only claims dropped. There is no self-mask, so a lying
// aggregator that holds (or later receives) the "dropped" member's masked upload and gets
// every survivor's seed with it removes all its pairwise masks and sees that member's
// summands. What this agent does refuse: revealing for a merge it is not running, before
// its own upload was masked, for itself, for agents whose keys it never verified or who are
// outside the scale, and any request that would leave fewer than two survivors. The standard
// defence — a self-mask per agent recovered by t-of-n Shamir shares, and a signed consistency
// round on who dropped — is not built.

import Foundation
import Merge
import MergeIO
import Protocol
import SecureSum

/// Its long steps (keysReceived, scaleReceived) run on the agent's worker thread while the
/// shell may answer a REVEAL_REQUEST: every entry point holds `lock`, so one runs at a time.
final class SecureExchange: @unchecked Sendable {
    private let lock = NSLock()
    let agent: String
    let round: Int
    let merge: String
    let plan: SecurePlan
    private let keyPair: AgreementKeyPair
    private let identity: SigningIdentity
    private let trust: FederationTrust
    private var seeds: [String: PairwiseSeed] = [:]
    private var layouts: [(label: String, layout: SumLayout, sameAs: String?)] = []
    private var values: [[Double]] = []
    /// heads: keep — this agent's head, sent in the clear (no sum can hide a per-agent tensor).
    private var keptHeads = NamedTensors()
    private var bounds: SecureBounds?
    /// The agents of the scale this agent masked its upload for.
    private var maskedFor: [String]?

    var binding: KeyBinding { KeyBinding(roundID: String(round), mergeName: merge) }

    init(agent: String, round: Int, merge: String, plan: SecurePlan, tls: TLSConfiguration) throws {
        guard let certificate = tls.certificateFile, let key = tls.keyFile else {
            throw SecureSumError.unreadablePEM(what: "the agent certificate", reason: "tls.cert and tls.key are needed to sign the secure-sum key")
        }
        self.agent = agent
        self.round = round
        self.merge = merge
        self.plan = plan
        keyPair = try AgreementKeyPair()
        identity = try SigningIdentity(certificateFile: certificate, keyFile: key)
        trust = try FederationTrust(caCertificateFile: tls.caFile)
    }

    /// SECURE_KEY: this round's public key, signed.
    func signedKey() throws -> SecureKey {
        lock.lock(); defer { lock.unlock() }
        return try SignedPublicKey(signing: keyPair, as: identity, for: binding).wire(round: round)
    }

    /// Verifies every relayed key (all or nothing: one forged key refuses the round), derives
    /// the pairwise seeds, computes the summands from the prepared model and statistics, and
    /// returns SECURE_BOUNDS.
    func keysReceived(_ relayed: SecureKeys, preparedDirectory: String) throws -> SecureBounds {
        lock.lock(); defer { lock.unlock() }
        guard relayed.round == round, relayed.merge == merge else {
            throw SecureExchangeError.otherMerge(round: relayed.round, merge: relayed.merge)
        }
        let keys = try relayed.keys.map { try SignedPublicKey(wire: $0) }
        let verified = try trust.verifyAll(keys, for: binding)
        guard let own = verified[agent], own.publicKey == keyPair.publicKey else { throw SecureExchangeError.ownKeyMissing }
        seeds = try PairwiseSeed.deriveAll(own: agent, keyPair: keyPair, verified: verified, binding: binding)

        let (model, _) = try ModelFiles.loadModel(directory: preparedDirectory)
        layouts = []
        values = []
        keptHeads = NamedTensors()
        var computed: [(label: String, layout: SumLayout, values: [[Double]])] = []
        for method in plan.methods {
            let parameters = try JSONDecoder().decode([String: MergeValue].self, from: Data(method.parameters.utf8))
            let choice = try MethodChoice(from: ["merge_method": .string(method.mergeMethod), "parameters": .map(parameters)], file: "WELCOME")
            let statistics = try ModelFiles.loadStatistics(path: preparedDirectory + "/stats.safetensors", model: agent, kinds: choice.requiredStatistics)
            let summands = try SumMerge.summands(method: method.mergeMethod, parameters: parameters, model: model, statistics: statistics,
                                                 weight: 1, name: agent)
            for (name, tensor) in summands.keptHeads.pairs where !keptHeads.contains(name) { keptHeads.set(name, tensor) }
            // RegMean at several α has the same summands (α is applied to the sums): sent once.
            if let twin = computed.first(where: { $0.layout == summands.layout && $0.values == summands.values }) {
                layouts.append((method.label, summands.layout, twin.label))
                continue
            }
            computed.append((method.label, summands.layout, summands.values))
            layouts.append((method.label, summands.layout, nil))
            values += summands.values
        }
        let b = try RoundScale.bounds(round: round, merge: merge, layoutDigest: layoutDigest(), summands: values)
        bounds = b
        return b
    }

    /// Checks the round's scale against this agent's bounds, encodes and masks every summand
    /// (stream k for the k-th summand over all methods) and writes the upload; returns its size.
    func scaleReceived(_ scale: SecureScale, preparedDirectory: String) throws -> (file: String, bytes: Int) {
        lock.lock(); defer { lock.unlock() }
        guard let bounds else { throw SecureExchangeError.scaleBeforeKeys }
        let scales = try RoundScale.accept(scale, own: bounds, agent: agent)
        // Seeds only with the agents whose masks the sums will hold.
        let peers = seeds.filter { scale.agents.contains($0.key) }
        guard peers.count == scale.agents.count - 1 else { throw SecureSumError.notAMember(agent: agent) }
        var words: [[UInt64]] = []
        for (k, v) in values.enumerated() {
            let own = bounds.boundExponents[k].map { FixedPointScale.power($0) } ?? 0
            let fixed = try scales[k].encode(v, ownBound: own, tensor: "summand \(k)")
            let mask = try PairwiseMask.mask(for: agent, seeds: peers, stream: UInt64(k), count: fixed.count)
            words.append(try PairwiseMask.apply(mask, to: fixed))
        }
        let config = (try? String(contentsOfFile: preparedDirectory + "/config.json", encoding: .utf8)) ?? "{}"
        let upload = MaskedUpload(agent: agent, merge: merge, round: round, config: config, methods: layouts, words: words, clearTensors: keptHeads)
        try upload.write(to: preparedDirectory + "/" + plan.upload)
        values = []      // the clear summands are no longer needed
        maskedFor = scale.agents
        let size = (try? FileManager.default.attributesOfItem(atPath: preparedDirectory + "/" + plan.upload)[.size] as? NSNumber)?.intValue ?? 0
        return (plan.upload, size)
    }

    /// REVEAL: the seeds this agent shares with each dropped member.
    func reveal(_ request: RevealRequest) throws -> Reveal {
        lock.lock(); defer { lock.unlock() }
        guard request.round == round, request.merge == merge else { throw SecureExchangeError.otherMerge(round: request.round, merge: request.merge) }
        guard let scale = maskedFor else { throw SecureExchangeError.revealBeforeMasking }
        var seedsOut: [String: String] = [:]
        for dropped in request.dropped {
            guard dropped != agent else { throw SecureExchangeError.revealRefused(dropped, "this agent itself") }
            guard scale.contains(dropped), let seed = seeds[dropped] else { throw SecureExchangeError.revealRefused(dropped, "not a member whose masks this agent applied") }
            seedsOut[dropped] = seed.hex
        }
        guard scale.count - Set(request.dropped).count >= 2 else {
            throw SecureExchangeError.revealRefused(request.dropped.joined(separator: ", "), "fewer than two survivors would remain")
        }
        return Reveal(round: round, merge: merge, agent: agent, seeds: seedsOut)
    }

    /// SHA-256 over the layouts in order: every member must have computed the same summands.
    private func layoutDigest() throws -> String {
        let hasher = SHA256Hasher()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]      // the same bytes in every process
        for (label, layout, sameAs) in layouts {
            hasher.update(Data(label.utf8))
            hasher.update(Data((sameAs ?? "-").utf8))
            hasher.update(try encoder.encode(layout))
        }
        return hasher.finalizeHex()
    }
}

enum SecureExchangeError: Error, CustomStringConvertible {
    case otherMerge(round: Int, merge: String)
    case ownKeyMissing
    case scaleBeforeKeys
    case revealBeforeMasking
    case revealRefused(String, String)

    var description: String {
        switch self {
        case let .otherMerge(round, merge): return "SECURE_KEYS for round \(round), merge \(loggable(merge)), which this agent is not running"
        case .ownKeyMissing: return "SECURE_KEYS does not carry this agent's own key as it sent it"
        case .scaleBeforeKeys: return "SECURE_SCALE arrived before SECURE_KEYS"
        case .revealBeforeMasking: return "REVEAL_REQUEST before this agent masked its upload"
        case let .revealRefused(who, why): return "no seed revealed for \(loggable(who)): \(why)"
        }
    }
}
