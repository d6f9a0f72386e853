// PairwiseSeed: the 32-byte secret two agents share for one round and merge,
// s_ij = HKDF-SHA256(X25519(i, j), info = domain ‖ round id ‖ merge name ‖ lower name ‖
// higher name ‖ their public keys). Both sides derive the same seed; the aggregator, which
// relayed only signed public keys, cannot.

import COpenSSL

public struct PairwiseSeed: Sendable, Equatable {
    /// The pair, ordered by AgentOrder (so s_ij and s_ji are one value with one label).
    public let lower: String
    public let higher: String
    /// AES-256 key of the pair's mask streams.
    public let bytes: [UInt8]

    public init(lower: String, higher: String, bytes: [UInt8]) {
        self.lower = lower
        self.higher = higher
        self.bytes = bytes
    }

    /// The other agent of the pair, seen from `agent`.
    public func peer(of agent: String) -> String? {
        agent == lower ? higher : agent == higher ? lower : nil
    }

    /// Derives the seed `own` shares with the (already verified) `peer` key.
    public static func derive(own agent: String, keyPair: AgreementKeyPair, peer: SignedPublicKey, binding: KeyBinding) throws -> PairwiseSeed {
        let secret = try keyPair.sharedSecret(with: peer.publicKey, peer: peer.agent)
        let ownFirst = AgentOrder.precedes(agent, peer.agent)
        let (lower, higher) = ownFirst ? (agent, peer.agent) : (peer.agent, agent)
        let (lowerKey, higherKey) = ownFirst ? (keyPair.publicKey, peer.publicKey) : (peer.publicKey, keyPair.publicKey)
        var info = CanonicalBytes(domain: "fedmerge secure-sum pair seed v1")
        info.append(binding.roundID)
        info.append(binding.mergeName)
        info.append(lower)
        info.append(higher)
        info.append(lowerKey)
        info.append(higherKey)
        return PairwiseSeed(lower: lower, higher: higher, bytes: try hkdfSHA256(secret: secret, info: info.bytes, length: 32))
    }

    /// Every seed `agent` shares with the other verified keys (its own key skipped), by peer.
    public static func deriveAll(own agent: String, keyPair: AgreementKeyPair, verified: [String: SignedPublicKey],
                                 binding: KeyBinding) throws -> [String: PairwiseSeed] {
        var seeds: [String: PairwiseSeed] = [:]
        for (peer, key) in verified where peer != agent {
            seeds[peer] = try derive(own: agent, keyPair: keyPair, peer: key, binding: binding)
        }
        return seeds
    }
}

/// The order "j > i" of the mask formula: byte-wise on the names' UTF-8, the same on every
/// platform and locale.
public enum AgentOrder {
    public static func precedes(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}

/// HKDF-SHA256 (RFC 5869) with no salt (zeros, as the RFC allows): extract then expand to `length`.
func hkdfSHA256(secret: [UInt8], info: [UInt8], length: Int) throws -> [UInt8] {
    guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nil) else { throw openSSLFailure("make an HKDF context") }
    defer { EVP_PKEY_CTX_free(context) }
    var out = [UInt8](repeating: 0, count: length)
    var outLength = length
    guard EVP_PKEY_derive_init(context) == 1,
          EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) == 1,
          EVP_PKEY_CTX_set1_hkdf_key(context, secret, Int32(secret.count)) == 1,
          EVP_PKEY_CTX_add1_hkdf_info(context, info, Int32(info.count)) == 1,
          EVP_PKEY_derive(context, &out, &outLength) == 1, outLength == length else {
        throw openSSLFailure("derive a pairwise seed with HKDF-SHA256")
    }
    return out
}
