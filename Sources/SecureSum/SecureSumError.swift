// Every way secure summation refuses its input: a forged or misbound key, a value or sum
// outside the fixed-point range, a malformed vector. Each case names the agent, tensor or
// value at fault. Peer-chosen names are printed escaped (String.debugDescription); daemons
// still pass them through `loggable` before logging.

public enum SecureSumError: Error, Equatable, Sendable, CustomStringConvertible {
    // Keys.
    /// The certificate sent with `agent`'s key does not chain to the federation CA.
    case untrustedCertificate(agent: String, reason: String)
    /// The certificate is valid but names someone else: `agent`'s key came with `certificateName`'s certificate.
    case certificateNameMismatch(agent: String, certificateName: String)
    /// The signature over (round, merge, agent, key) does not verify under the certificate's key.
    case badSignature(agent: String)
    /// The key was made for another round or merge than the one being run.
    case wrongBinding(agent: String, expected: KeyBinding, got: KeyBinding)
    /// A public key that is not 32 bytes of X25519, or that X25519 refuses (low-order point).
    case malformedPublicKey(agent: String, reason: String)
    /// Two keys claim the same agent.
    case duplicateAgent(String)
    /// A pairwise seed asked for an agent that has no verified key.
    case unknownAgent(String)
    /// Bad PEM (certificate, key) handed to us: `what` says which.
    case unreadablePEM(what: String, reason: String)
    /// A signing key that does not belong to its certificate.
    case keyDoesNotMatchCertificate(agent: String)

    // Fixed point.
    /// A reported per-tensor bound that is negative, not finite, or too large for int64 with K agents.
    case unusableBound(tensor: String, bound: Double, agents: Int)
    /// A value beyond the bound its agent reported: encoding would wrap, so it is refused.
    case valueBeyondBound(tensor: String, index: Int, value: Double, bound: Double)
    /// A NaN or infinity in a summand.
    case nonFinite(tensor: String, index: Int)
    /// A decoded sum beyond K·(B·2^f + 1): some agent exceeded its bound or a mask was not removed.
    case sumOutOfRange(tensor: String, index: Int, value: Int64, limit: Int64)
    /// Vectors whose lengths disagree (a summand, a mask).
    case lengthMismatch(what: String, expected: Int, actual: Int)

    // The round's scale (SECURE_BOUNDS → SECURE_SCALE).
    /// An agent's bounds were made for another summand layout (or another count of summands).
    case layoutMismatch(agent: String, expected: String, got: String)
    /// The scale the aggregator sent for summand `index` is not the rule's, or not safe.
    case scaleRefused(index: Int, reason: String)
    /// A SECURE_SCALE (or reveal) for a set of agents that does not include `agent`.
    case notAMember(agent: String)

    // Dropouts.
    /// A revealed seed that does not involve the dropped agent, or comes from a non-survivor.
    case badReveal(survivor: String, dropped: String, reason: String)

    case openSSL(operation: String, reason: String)

    public var description: String {
        switch self {
        case .untrustedCertificate(let agent, let reason):
            "the key of agent \(agent.debugDescription) comes with a certificate the federation CA did not issue: \(reason)"
        case .certificateNameMismatch(let agent, let certificateName):
            "the key claimed by agent \(agent.debugDescription) is signed with the certificate of \(certificateName.debugDescription)"
        case .badSignature(let agent):
            "the signature on agent \(agent.debugDescription)'s key does not verify (key, round or merge altered, or signed by another key)"
        case .wrongBinding(let agent, let expected, let got):
            "agent \(agent.debugDescription)'s key was made for \(got) but this is \(expected); a key is good for one round and merge only"
        case .malformedPublicKey(let agent, let reason):
            "agent \(agent.debugDescription)'s X25519 public key is unusable: \(reason)"
        case .duplicateAgent(let agent):
            "two keys claim agent \(agent.debugDescription)"
        case .unknownAgent(let agent):
            "no verified key for agent \(agent.debugDescription)"
        case .unreadablePEM(let what, let reason):
            "cannot read \(what): \(reason)"
        case .keyDoesNotMatchCertificate(let agent):
            "the signing key of \(agent.debugDescription) does not belong to its certificate"
        case .unusableBound(let tensor, let bound, let agents):
            "bound \(bound) reported for \(tensor.debugDescription) cannot be summed over \(agents) agents in int64 (must be finite, ≥ 0 and below 2^62/K)"
        case .valueBeyondBound(let tensor, let index, let value, let bound):
            "\(tensor.debugDescription)[\(index)] = \(value) exceeds the reported bound \(bound); refusing to encode (it would wrap)"
        case .nonFinite(let tensor, let index):
            "\(tensor.debugDescription)[\(index)] is not finite"
        case .sumOutOfRange(let tensor, let index, let value, let limit):
            "sum of \(tensor.debugDescription)[\(index)] = \(value) is beyond ±\(limit): an agent exceeded its bound or a mask was not removed"
        case .lengthMismatch(let what, let expected, let actual):
            "\(what) has \(actual) entries, expected \(expected)"
        case .layoutMismatch(let agent, let expected, let got):
            "agent \(agent.debugDescription) reported bounds for summand layout \(got), the round's is \(expected)"
        case .scaleRefused(let index, let reason):
            "the round's fixed-point scale for summand \(index) is refused: \(reason)"
        case .notAMember(let agent):
            "the round's secure sum does not include \(agent.debugDescription)"
        case .badReveal(let survivor, let dropped, let reason):
            "seed revealed by \(survivor.debugDescription) for dropped \(dropped.debugDescription) refused: \(reason)"
        case .openSSL(let operation, let reason):
            "OpenSSL could not \(operation): \(reason)"
        }
    }
}
