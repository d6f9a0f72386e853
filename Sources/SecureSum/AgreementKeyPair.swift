// AgreementKeyPair: one agent's X25519 key pair for one round (OpenSSL EVP_PKEY_X25519),
// and the Diffie–Hellman shared secret with a peer's public key. The private half never
// leaves the process; a new pair is made per round so old seeds say nothing about new ones.

import COpenSSL
import OpenSSLSupport

public final class AgreementKeyPair: @unchecked Sendable {
    /// Raw X25519 public key (RFC 7748), 32 bytes.
    public let publicKey: [UInt8]
    let key: OwnedKey

    public static let publicKeyLength = 32

    /// A fresh key pair from OpenSSL's CSPRNG.
    public init() throws {
        guard let context = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nil) else { throw openSSLFailure("make an X25519 key context") }
        defer { EVP_PKEY_CTX_free(context) }
        var raw: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_keygen(context, &raw) == 1, let raw else {
            throw openSSLFailure("generate an X25519 key pair")
        }
        key = OwnedKey(taking: raw)
        publicKey = try Self.rawPublicKey(of: key.handle)
    }

    static func rawPublicKey(of handle: OpaquePointer) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: publicKeyLength)
        var length = publicKeyLength
        guard EVP_PKEY_get_raw_public_key(handle, &bytes, &length) == 1, length == publicKeyLength else {
            throw openSSLFailure("read an X25519 public key")
        }
        return bytes
    }

    /// X25519(own private, peer public): 32 bytes both sides compute alike. OpenSSL refuses
    /// peer keys that give the all-zero secret (low-order points); that names `peer`.
    func sharedSecret(with peerPublicKey: [UInt8], peer: String) throws -> [UInt8] {
        guard peerPublicKey.count == Self.publicKeyLength else {
            throw SecureSumError.malformedPublicKey(agent: peer, reason: "\(peerPublicKey.count) bytes, X25519 keys are 32")
        }
        guard let peerKey = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nil, peerPublicKey, peerPublicKey.count) else {
            throw SecureSumError.malformedPublicKey(agent: peer, reason: drainOpenSSLErrors())
        }
        defer { EVP_PKEY_free(peerKey) }
        guard let context = EVP_PKEY_CTX_new(key.handle, nil) else { throw openSSLFailure("make an X25519 derive context") }
        defer { EVP_PKEY_CTX_free(context) }
        var secret = [UInt8](repeating: 0, count: 32)
        var length = secret.count
        guard EVP_PKEY_derive_init(context) == 1, EVP_PKEY_derive_set_peer(context, peerKey) == 1,
              EVP_PKEY_derive(context, &secret, &length) == 1, length == 32 else {
            throw SecureSumError.malformedPublicKey(agent: peer, reason: drainOpenSSLErrors(or: "X25519 refused the key"))
        }
        return secret
    }
}
