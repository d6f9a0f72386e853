// SigningIdentity: an agent's federation certificate and its ECDSA P-256 private key (the
// files `fedmerge certs issue` wrote), used to sign the agent's X25519 public key so peers
// know the key is the agent's and not one the aggregator put in the middle.

import COpenSSL
import OpenSSLSupport
import Foundation

public final class SigningIdentity: @unchecked Sendable {
    /// The certificate's common name: the agent's name in the federation.
    public let agent: String
    public let certificatePEM: Data
    let signingKey: OwnedKey

    /// From PEM text; refuses a key that does not belong to the certificate.
    public init(certificatePEM: Data, privateKeyPEM: Data) throws {
        let certificate = try OwnedCertificate.read(pem: certificatePEM, what: "the agent certificate")
        guard let name = certificate.commonName else {
            throw SecureSumError.unreadablePEM(what: "the agent certificate", reason: "it has no subject common name")
        }
        guard let raw = withPEMBIO(privateKeyPEM, { PEM_read_bio_PrivateKey($0, nil, nil, nil) }) else {
            throw SecureSumError.unreadablePEM(what: "the private key of \(name)", reason: drainOpenSSLErrors(or: "not a PEM private key"))
        }
        let key = OwnedKey(taking: raw)
        guard X509_check_private_key(certificate.handle, key.handle) == 1 else {
            ERR_clear_error()
            throw SecureSumError.keyDoesNotMatchCertificate(agent: name)
        }
        self.agent = name
        self.certificatePEM = certificatePEM
        self.signingKey = key
    }

    /// From the certificate and key files.
    public convenience init(certificateFile: String, keyFile: String) throws {
        guard let certificate = FileManager.default.contents(atPath: certificateFile) else {
            throw SecureSumError.unreadablePEM(what: certificateFile, reason: "no such file or not readable")
        }
        guard let key = FileManager.default.contents(atPath: keyFile) else {
            throw SecureSumError.unreadablePEM(what: keyFile, reason: "no such file or not readable")
        }
        try self.init(certificatePEM: certificate, privateKeyPEM: key)
    }

    /// ECDSA-SHA256 (DER) over `message` with the certificate's key.
    func sign(_ message: [UInt8]) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw openSSLFailure("make a signing context") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, signingKey.handle) == 1 else { throw openSSLFailure("start an ECDSA signature") }
        var length = 0
        guard EVP_DigestSign(context, nil, &length, message, message.count) == 1 else { throw openSSLFailure("size an ECDSA signature") }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, message, message.count) == 1 else { throw openSSLFailure("sign with ECDSA") }
        return Array(signature.prefix(length))
    }
}
