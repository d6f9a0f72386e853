// Which certificate, key and federation CA a daemon uses, and the OpenSSL SSL_CTX built
// from them: TLS 1.3 only, peer certificate required and verified on both sides.

import COpenSSL
import Foundation

/// Paths of the PEM files one daemon presents and trusts (from `fedmerge certs`).
public struct TLSConfiguration: Sendable, Equatable {
    /// The federation CA certificate both sides verify against.
    public var caFile: String
    /// This daemon's certificate and key; nil only to exercise refusal of cert-less peers.
    public var certificateFile: String?
    public var keyFile: String?

    public init(caFile: String, certificateFile: String?, keyFile: String?) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
    }

    /// The conventional layout of a certificate directory: `ca.pem`, `NAME.pem`, `NAME.key`.
    public init(directory: String, name: String) {
        self.init(caFile: directory + "/ca.pem", certificateFile: directory + "/\(name).pem", keyFile: directory + "/\(name).key")
    }
}

/// Why a TLS context or session failed; reasons come from OpenSSL's error queue.
public enum TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    case cannotLoadCA(file: String, reason: String)
    case cannotLoadCertificate(file: String, reason: String)
    case cannotLoadKey(file: String, reason: String)
    case keyDoesNotMatchCertificate(certificate: String, key: String)
    case contextSetup(String)
    case handshakeFailed(String)
    case recordFailed(String)

    public var description: String {
        switch self {
        case .cannotLoadCA(let file, let reason): "cannot load the federation CA from \(file): \(reason)"
        case .cannotLoadCertificate(let file, let reason): "cannot load the certificate \(file): \(reason)"
        case .cannotLoadKey(let file, let reason): "cannot load the private key \(file): \(reason)"
        case .keyDoesNotMatchCertificate(let certificate, let key): "the key \(key) does not belong to the certificate \(certificate); reissue both with `fedmerge certs issue`"
        case .contextSetup(let reason): "cannot set up TLS: \(reason)"
        case .handshakeFailed(let reason): "TLS handshake failed: \(reason)"
        case .recordFailed(let reason): "TLS record layer failed: \(reason)"
        }
    }
}

/// Drains OpenSSL's (thread-local) error queue into one line.
func openSSLErrors(or fallback: String = "unknown OpenSSL error") -> String {
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

/// Owner of one SSL_CTX. Read-only after init, so sessions on any thread may share it.
final class TLSContext: @unchecked Sendable {
    enum Role: Sendable { case server, client }

    let handle: OpaquePointer
    let role: Role

    init(_ configuration: TLSConfiguration, role: Role) throws {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_method()) else { throw TLSError.contextSetup(openSSLErrors()) }
        handle = ctx
        self.role = role
        guard fm_SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1,
              fm_SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1 else {
            throw TLSError.contextSetup("TLS 1.3 is not available: \(openSSLErrors())")
        }
        // No session tickets: every link is a fresh, fully authenticated handshake, and no
        // post-handshake records arrive that carry no application data.
        _ = SSL_CTX_set_num_tickets(ctx, 0)
        guard SSL_CTX_load_verify_locations(ctx, configuration.caFile, nil) == 1 else {
            throw TLSError.cannotLoadCA(file: configuration.caFile, reason: openSSLErrors())
        }
        if let certificate = configuration.certificateFile {
            guard SSL_CTX_use_certificate_chain_file(ctx, certificate) == 1 else {
                throw TLSError.cannotLoadCertificate(file: certificate, reason: openSSLErrors())
            }
            let key = configuration.keyFile ?? certificate
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
                throw TLSError.cannotLoadKey(file: key, reason: openSSLErrors())
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                ERR_clear_error()
                throw TLSError.keyDoesNotMatchCertificate(certificate: certificate, key: key)
            }
        }
        switch role {
        case .server:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        case .client:
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        }
    }

    deinit { SSL_CTX_free(handle) }
}
