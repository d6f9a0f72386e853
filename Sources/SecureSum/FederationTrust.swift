// FederationTrust: the federation CA certificate an agent trusts, and the check every agent
// runs on every relayed SignedPublicKey: the certificate chains to the CA, its CN is the
// claimed agent, the key is bound to this round and merge, and the signature verifies.

import COpenSSL
import OpenSSLSupport
import Foundation

public final class FederationTrust: @unchecked Sendable {
    private let authority: OwnedCertificate

    public init(caCertificatePEM: Data) throws {
        authority = try OwnedCertificate.read(pem: caCertificatePEM, what: "the federation CA certificate")
    }

    public convenience init(caCertificateFile: String) throws {
        guard let pem = FileManager.default.contents(atPath: caCertificateFile) else {
            throw SecureSumError.unreadablePEM(what: caCertificateFile, reason: "no such file or not readable")
        }
        try self.init(caCertificatePEM: pem)
    }

    /// Checks `key` for use in `expected`. The checks run cheapest-to-explain first so the
    /// error names the real fault: binding, then chain, then name, then signature.
    public func verify(_ key: SignedPublicKey, for expected: KeyBinding) throws {
        guard key.binding == expected else { throw SecureSumError.wrongBinding(agent: key.agent, expected: expected, got: key.binding) }
        guard key.publicKey.count == AgreementKeyPair.publicKeyLength else {
            throw SecureSumError.malformedPublicKey(agent: key.agent, reason: "\(key.publicKey.count) bytes, X25519 keys are 32")
        }
        let certificate: OwnedCertificate
        do { certificate = try OwnedCertificate.read(pem: key.certificatePEM, what: "the certificate of \(key.agent.debugDescription)") } catch {
            throw SecureSumError.untrustedCertificate(agent: key.agent, reason: "\(error)")
        }
        try verifyChain(certificate, agent: key.agent)
        let name = certificate.commonName ?? ""
        guard name == key.agent else { throw SecureSumError.certificateNameMismatch(agent: key.agent, certificateName: name) }
        guard verifySignature(key.signature, over: key.signedBytes, by: certificate) else { throw SecureSumError.badSignature(agent: key.agent) }
    }

    /// Verifies every key and returns them by agent; refuses two keys for one agent.
    public func verifyAll(_ keys: [SignedPublicKey], for expected: KeyBinding) throws -> [String: SignedPublicKey] {
        var byAgent: [String: SignedPublicKey] = [:]
        for key in keys {
            guard byAgent[key.agent] == nil else { throw SecureSumError.duplicateAgent(key.agent) }
            try verify(key, for: expected)
            byAgent[key.agent] = key
        }
        return byAgent
    }

    /// X509_verify_cert against a store holding only the federation CA, for TLS-client use
    /// (every agent certificate carries clientAuth).
    private func verifyChain(_ certificate: OwnedCertificate, agent: String) throws {
        guard let store = X509_STORE_new() else { throw openSSLFailure("make a certificate store") }
        defer { X509_STORE_free(store) }
        guard X509_STORE_add_cert(store, authority.handle) == 1 else { throw openSSLFailure("add the federation CA to a store") }
        guard let context = X509_STORE_CTX_new() else { throw openSSLFailure("make a verification context") }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_CTX_init(context, store, certificate.handle, nil) == 1 else { throw openSSLFailure("start certificate verification") }
        X509_STORE_CTX_set_purpose(context, X509_PURPOSE_SSL_CLIENT)
        guard X509_verify_cert(context) == 1 else {
            let code = X509_STORE_CTX_get_error(context)
            ERR_clear_error()
            throw SecureSumError.untrustedCertificate(agent: agent, reason: String(cString: X509_verify_cert_error_string(Int(code))))
        }
    }

    private func verifySignature(_ signature: [UInt8], over message: [UInt8], by certificate: OwnedCertificate) -> Bool {
        guard let publicKey = X509_get0_pubkey(certificate.handle), let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        let ok = EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, publicKey) == 1
            && EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
        ERR_clear_error()
        return ok
    }
}
