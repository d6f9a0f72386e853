// OpenSSLSupport: the owners of the OpenSSL objects FedMerge holds (EVP_PKEY, X509), the PEM
// memory reader, the common-name reader and the error-queue drain — one copy for Protocol (TLS,
// certificates) and SecureSum (signed key exchange).

import COpenSSL
import Foundation

/// Owner of an EVP_PKEY* (a TLS or certificate key, an X25519 key pair, a borrowed public key).
public final class OwnedKey: @unchecked Sendable {
    public let handle: OpaquePointer
    public init(taking handle: OpaquePointer) { self.handle = handle }
    deinit { EVP_PKEY_free(handle) }
}

/// Owner of an X509*.
public final class OwnedCertificate: @unchecked Sendable {
    public let handle: OpaquePointer
    public init(taking handle: OpaquePointer) { self.handle = handle }
    deinit { X509_free(handle) }

    /// Parses one PEM certificate; nil when it is not one (the OpenSSL errors stay queued).
    public static func read(pem: Data) -> OwnedCertificate? {
        withPEMBIO(pem) { PEM_read_bio_X509($0, nil, nil, nil) }.map(OwnedCertificate.init(taking:))
    }

    /// The subject common name (FedMerge certificates carry the agent's or server's name there).
    public var commonName: String? { Self.commonName(of: handle) }

    /// The subject common name of a certificate OpenSSL owns (e.g. a TLS peer's).
    public static func commonName(of certificate: OpaquePointer) -> String? {
        guard let subject = X509_get_subject_name(certificate) else { return nil }
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
public func withPEMBIO<T>(_ pem: Data, _ read: (OpaquePointer) -> T?) -> T? {
    pem.withUnsafeBytes { raw in
        guard raw.count > 0, let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
        defer { BIO_free(bio) }
        return read(bio)
    }
}

/// The queued OpenSSL errors (a thread-local queue) as one line, and the queue emptied.
public func drainOpenSSLErrors(or fallback: String = "unknown OpenSSL error") -> String {
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
