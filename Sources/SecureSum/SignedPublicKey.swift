// SignedPublicKey: an agent's X25519 public key for one round and merge, with the agent's
// certificate and its signature over (round id, merge name, agent, key). The aggregator
// relays these; every agent verifies each one (FederationTrust.verify) before deriving a seed.

import Foundation

public struct SignedPublicKey: Sendable, Equatable {
    public var agent: String
    public var binding: KeyBinding
    /// Raw X25519 public key, 32 bytes.
    public var publicKey: [UInt8]
    /// The signer's certificate (PEM), issued by the federation CA, CN = `agent`.
    public var certificatePEM: Data
    /// ECDSA-SHA256 (DER) over `signedBytes`.
    public var signature: [UInt8]

    public init(agent: String, binding: KeyBinding, publicKey: [UInt8], certificatePEM: Data, signature: [UInt8]) {
        self.agent = agent
        self.binding = binding
        self.publicKey = publicKey
        self.certificatePEM = certificatePEM
        self.signature = signature
    }

    /// Signs `keyPair`'s public key as `identity.agent` for `binding`.
    public init(signing keyPair: AgreementKeyPair, as identity: SigningIdentity, for binding: KeyBinding) throws {
        let bytes = Self.signedBytes(agent: identity.agent, binding: binding, publicKey: keyPair.publicKey)
        self.init(agent: identity.agent, binding: binding, publicKey: keyPair.publicKey,
                  certificatePEM: identity.certificatePEM, signature: try identity.sign(bytes))
    }

    /// What the signature covers. The binding is in it, so a key re-labelled for another
    /// round or merge no longer verifies; the agent is in it, so a key cannot be re-claimed.
    static func signedBytes(agent: String, binding: KeyBinding, publicKey: [UInt8]) -> [UInt8] {
        var canonical = CanonicalBytes(domain: "fedmerge secure-sum x25519 key v1")
        canonical.append(binding.roundID)
        canonical.append(binding.mergeName)
        canonical.append(agent)
        canonical.append(publicKey)
        return canonical.bytes
    }

    var signedBytes: [UInt8] { Self.signedBytes(agent: agent, binding: binding, publicKey: publicKey) }
}
