// Which certificate, key and federation CA a daemon uses, and the OpenSSL SSL_CTX built
// from them: TLS 1.3 only, peer certificate required and verified on both sides.

import COpenSSL
import OpenSSLSupport
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

/// Why a daemon's own TLS files cannot be used (thrown by SecureServer/SecureClient init and
/// by `TLSConfiguration.check`). Each case names the file; daemons exit 4 on any of them.
public enum TLSCredentialError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `role` is "federation CA", "certificate" or "private key".
    case missingFile(role: String, path: String)
    case unreadableFile(role: String, path: String, reason: String)
    /// Group or others may read (or write) the key: refused, as ssh does.
    case keyAccessibleByOthers(path: String, mode: UInt16)
    case caNotPEM(path: String, reason: String)
    case certificateNotPEM(path: String, reason: String)
    case keyNotPEM(path: String, reason: String)
    case keyDoesNotMatchCertificate(certificate: String, key: String)

    public var description: String {
        switch self {
        case .missingFile(let role, let path): "\(role) \(path) does not exist"
        case .unreadableFile(let role, let path, let reason): "cannot read the \(role) \(path): \(reason)"
        case .keyAccessibleByOthers(let path, let mode):
            "private key \(path) is \(mode & 0o044 != 0 ? "readable" : "writable") by others (mode \(String(format: "%04o", mode))); run chmod 600 \(path)"
        case .caNotPEM(let path, let reason): "the federation CA \(path) is not a PEM certificate (\(reason))"
        case .certificateNotPEM(let path, let reason): "the certificate \(path) is not a PEM certificate (\(reason))"
        case .keyNotPEM(let path, let reason): "the private key \(path) is not a PEM private key (\(reason))"
        case .keyDoesNotMatchCertificate(let certificate, let key): "the key \(key) does not belong to the certificate \(certificate); reissue both with `fedmerge certs issue`"
        }
    }
}

/// Why a TLS context or session failed; reasons come from OpenSSL's error queue.
public enum TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    case contextSetup(String)
    case handshakeFailed(String)
    /// The peer answered with BusyAlert (TLSSession.swift): it turned this handshake away.
    case peerBusy
    case recordFailed(String)

    public var description: String {
        switch self {
        case .contextSetup(let reason): "cannot set up TLS: \(reason)"
        case .handshakeFailed(let reason): "TLS handshake failed: \(reason)"
        case .peerBusy: "the peer turned the handshake away (internal_error alert: too many handshakes in progress)"
        case .recordFailed(let reason): "TLS record layer failed: \(reason)"
        }
    }
}

extension TLSConfiguration {
    /// Loads the files as a daemon would and throws the first TLSCredentialError (for `--check`).
    public func check() throws {
        _ = try TLSContext(self, role: .server)
    }

    /// A file exists and can be opened for reading; else the error naming it.
    static func requireReadable(_ path: String, role: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { throw TLSCredentialError.missingFile(role: role, path: path) }
            throw TLSCredentialError.unreadableFile(role: role, path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw TLSCredentialError.unreadableFile(role: role, path: path, reason: "not a regular file") }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw TLSCredentialError.unreadableFile(role: role, path: path, reason: String(cString: strerror(errno))) }
        close(fd)
        if role == "private key", info.st_mode & 0o077 != 0 {
            throw TLSCredentialError.keyAccessibleByOthers(path: path, mode: UInt16(info.st_mode & 0o7777))
        }
    }
}

/// Owner of one SSL_CTX. Read-only after init, so sessions on any thread may share it.
final class TLSContext: @unchecked Sendable {
    enum Role: Sendable { case server, client }

    let handle: OpaquePointer
    let role: Role

    /// `protocolVersion` exists only so tests can build an old-version peer; daemons keep TLS 1.3.
    init(_ configuration: TLSConfiguration, role: Role, protocolVersion: Int32 = TLS1_3_VERSION) throws {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_method()) else { throw TLSError.contextSetup(drainOpenSSLErrors()) }
        handle = ctx
        self.role = role
        guard fm_SSL_CTX_set_min_proto_version(ctx, protocolVersion) == 1,
              fm_SSL_CTX_set_max_proto_version(ctx, protocolVersion) == 1 else {
            throw TLSError.contextSetup("TLS 1.3 is not available: \(drainOpenSSLErrors())")
        }
        // AES-128-GCM first: TLS 1.3's mandatory suite, and the cheapest per byte with AES-NI
        // (bulk transfer is bound by it); AES-256-GCM and ChaCha20 remain acceptable.
        guard SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") == 1 else {
            throw TLSError.contextSetup("cannot set TLS 1.3 cipher suites: \(drainOpenSSLErrors())")
        }
        // No session tickets: every link is a fresh, fully authenticated handshake, and no
        // post-handshake records arrive that carry no application data.
        _ = SSL_CTX_set_num_tickets(ctx, 0)
        // Existence, readability and the key's mode first, so each failure names its file
        // rather than surfacing as OpenSSL's "system lib" text.
        try TLSConfiguration.requireReadable(configuration.caFile, role: "federation CA")
        guard SSL_CTX_load_verify_locations(ctx, configuration.caFile, nil) == 1 else {
            throw TLSCredentialError.caNotPEM(path: configuration.caFile, reason: drainOpenSSLErrors())
        }
        if let certificate = configuration.certificateFile {
            let key = configuration.keyFile ?? certificate
            try TLSConfiguration.requireReadable(certificate, role: "certificate")
            try TLSConfiguration.requireReadable(key, role: "private key")
            guard SSL_CTX_use_certificate_chain_file(ctx, certificate) == 1 else {
                throw TLSCredentialError.certificateNotPEM(path: certificate, reason: drainOpenSSLErrors())
            }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
                // OpenSSL compares the key with the certificate while loading it.
                let first = ERR_peek_error()
                if ERR_GET_LIB(first) == ERR_LIB_X509, ERR_GET_REASON(first) == X509_R_KEY_VALUES_MISMATCH {
                    ERR_clear_error()
                    throw TLSCredentialError.keyDoesNotMatchCertificate(certificate: certificate, key: key)
                }
                throw TLSCredentialError.keyNotPEM(path: key, reason: drainOpenSSLErrors())
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                ERR_clear_error()
                throw TLSCredentialError.keyDoesNotMatchCertificate(certificate: certificate, key: key)
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
