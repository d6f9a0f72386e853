// Owners of the OpenSSL objects secure summation holds (EVP_PKEY, X509) and the readers
// that make them from PEM. SecureSum stands on COpenSSL alone, so it keeps its own owners
// rather than borrowing Protocol's TLS ones.

import COpenSSL
import Foundation

/// Owner of an EVP_PKEY* (an X25519 key pair, an ECDSA signing key, or a borrowed public key).
final class OwnedKey: @unchecked Sendable {
    let handle: OpaquePointer
    init(taking handle: OpaquePointer) { self.handle = handle }
    deinit { EVP_PKEY_free(handle) }
}

/// Owner of an X509*.
final class OwnedCertificate: @unchecked Sendable {
    let handle: OpaquePointer
    init(taking handle: OpaquePointer) { self.handle = handle }
    deinit { X509_free(handle) }

    /// Parses one PEM certificate; `what` names it in the error.
    static func read(pem: Data, what: String) throws -> OwnedCertificate {
        guard let raw = withPEMBIO(pem, { PEM_read_bio_X509($0, nil, nil, nil) }) else {
            throw SecureSumError.unreadablePEM(what: what, reason: drainOpenSSLErrors(or: "not a PEM certificate"))
        }
        return OwnedCertificate(taking: raw)
    }

    /// The subject common name (FedMerge certificates carry the agent's name there).
    var commonName: String? {
        guard let subject = X509_get_subject_name(handle) else { return nil }
        let index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(subject, index), let asn1 = X509_NAME_ENTRY_get_data(entry) else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, asn1)
        guard length >= 0, let utf8 else { return nil }
        defer { CRYPTO_free(utf8, nil, 0) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }
}

/// Runs `read` on a memory BIO over `pem`.
func withPEMBIO<T>(_ pem: Data, _ read: (OpaquePointer) -> T?) -> T? {
    pem.withUnsafeBytes { raw in
        guard raw.count > 0, let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
        defer { BIO_free(bio) }
        return read(bio)
    }
}

/// The queued OpenSSL errors as one line (and the queue emptied).
func drainOpenSSLErrors(or fallback: String = "unknown OpenSSL error") -> String {
    var lines: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        lines.append(String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return lines.isEmpty ? fallback : lines.joined(separator: "; ")
}

func openSSLFailure(_ operation: String) -> SecureSumError {
    .openSSL(operation: operation, reason: drainOpenSSLErrors())
}
