// One TLS 1.3 session whose records travel in ZeroMQ STREAM messages (pieces of one TCP
// stream): received pieces are lent to OpenSSL without copying (`withFrame`; a record split
// across pieces is kept until it is whole), produced records are taken as one malloc'd buffer
// that ZeroMQ frees after sending (`takeOutput`). Owns the SSL object; one thread at a time.

import COpenSSL
import OpenSSLSupport
import Foundation

/// Owner of the frame BIO's method table (Sources/COpenSSL/shim.h): created once, read-only after.
private final class FrameBIOMethod: @unchecked Sendable {
    static let shared = FrameBIOMethod()
    let handle: OpaquePointer? = fm_frame_bio_method_new()
}

/// The alert a server sends, unencrypted, to a connection it abandons before answering its
/// ClientHello (evicted or stalled handshake): TLS has no "busy" alert, so internal_error
/// (80) — "cannot continue, for reasons unrelated to the peer" — is the one we give that meaning.
enum BusyAlert {
    static let description: Int32 = 80
    /// One TLS record: alert (21), legacy version 3.3, length 2, fatal (2), internal_error.
    static let record = Data([21, 3, 3, 0, 2, 2, UInt8(description)])
}

final class TLSSession: @unchecked Sendable {
    private let ssl: OpaquePointer
    /// One frame BIO serves as both read and write BIO (shim.h explains the copies it saves).
    private let frames: OpaquePointer
    private(set) var isEstablished = false

    /// `serverName` (client side only) is checked against the server certificate's SAN/CN.
    init(context: TLSContext, serverName: String? = nil) throws {
        ERR_clear_error()
        guard let ssl = SSL_new(context.handle) else { throw TLSError.contextSetup(drainOpenSSLErrors()) }
        guard let method = FrameBIOMethod.shared.handle, let frames = BIO_new(method) else {
            SSL_free(ssl)
            throw TLSError.contextSetup("cannot create the frame BIO: \(drainOpenSSLErrors())")
        }
        SSL_set_bio(ssl, frames, frames)  // the SSL now owns the BIO
        self.ssl = ssl
        self.frames = frames
        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName {
                guard SSL_set1_host(ssl, serverName) == 1, fm_SSL_set_tlsext_host_name(ssl, serverName) == 1 else {
                    throw TLSError.contextSetup("cannot set expected server name '\(serverName)': \(drainOpenSSLErrors())")
                }
            }
        }
    }

    deinit { SSL_free(ssl) }

    /// Lends one received frame to OpenSSL for the duration of `body` (no copy). Bytes OpenSSL
    /// has not consumed by the end (part of a record) are copied so the frame can be released.
    func withFrame<T>(_ bytes: UnsafeRawBufferPointer, _ body: () throws -> T) throws -> T {
        if let base = bytes.baseAddress, bytes.count > 0 { fm_frame_bio_lend_input(frames, base, bytes.count) }
        defer { _ = fm_frame_bio_detach_input(frames) }
        return try body()
    }

    /// Advances the handshake with what has been fed; true once it is complete.
    func advanceHandshake() throws -> Bool {
        if isEstablished { return true }
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            isEstablished = true
            return true
        }
        let code = SSL_get_error(ssl, rc)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return false }
        // OpenSSL files a received fatal alert as reason 1000 + its description.
        if ERR_GET_REASON(ERR_peek_error()) == SSL_AD_REASON_OFFSET + BusyAlert.description {
            ERR_clear_error()
            throw TLSError.peerBusy
        }
        throw TLSError.handshakeFailed(failureReason())
    }

    /// Why the handshake failed: the certificate verdict if there is one, else OpenSSL's queue.
    private func failureReason() -> String {
        let queue = drainOpenSSLErrors(or: "")
        let verdict = SSL_get_verify_result(ssl)
        if verdict != X509_V_OK {
            let text = String(cString: X509_verify_cert_error_string(verdict))
            return queue.isEmpty ? "certificate rejected: \(text)" : "certificate rejected: \(text) (\(queue))"
        }
        return queue.isEmpty ? "peer closed or sent something that is not a TLS 1.3 handshake" : queue
    }

    /// Bytes of records waiting to be sent.
    var pendingOutput: Int { fm_frame_bio_output_length(frames) }

    /// Takes the records produced so far as one malloc'd buffer of `capacity` bytes (the caller
    /// recycles it into BufferPool, or hands it to ZeroMQ with `ZMQSocket.send(taking:…)`).
    func takeOutput() -> (buffer: UnsafeMutableRawPointer, count: Int, capacity: Int)? {
        var count = 0, capacity = 0
        guard pendingOutput > 0, let buffer = fm_frame_bio_take_output(frames, &count, &capacity) else { return nil }
        return (buffer, count, capacity)
    }

    /// Sizes the output buffer for `plaintextBytes` more bytes of records (from BufferPool when
    /// nothing is pending), so a large message is encrypted into one warm allocation.
    func reserveOutput(forPlaintext plaintextBytes: Int) {
        // TLS 1.3 AES-GCM: 5-byte header + 1 content type + 16-byte tag per ≤ 16 KiB record.
        let needed = plaintextBytes + (plaintextBytes / 16384 + 2) * 22 + 64
        if pendingOutput == 0, fm_frame_bio_output_capacity(frames) < needed, let fresh = BufferPool.shared.take(atLeast: needed) {
            var oldCapacity = 0
            if let old = fm_frame_bio_swap_output(frames, fresh.buffer, fresh.capacity, &oldCapacity) {
                BufferPool.shared.recycle(old, capacity: oldCapacity)
            }
        }
        _ = fm_frame_bio_reserve(frames, needed)
    }

    /// Encrypts `plaintext` into records (≤ 16 KiB each) appended to the output buffer.
    func write(_ plaintext: UnsafeRawBufferPointer) throws {
        guard plaintext.count > 0 else { return }
        ERR_clear_error()
        var written = 0
        let rc = SSL_write_ex(ssl, plaintext.baseAddress, plaintext.count, &written)
        guard rc == 1, written == plaintext.count else {
            throw TLSError.recordFailed("encrypting \(plaintext.count) bytes: \(drainOpenSSLErrors())")
        }
    }

    /// Decrypts up to `buffer.count` bytes of what has been fed, straight into `buffer` (the
    /// caller's message buffer, so plaintext is copied once). Returns 0 when no application
    /// data is ready (e.g. only part of a record arrived).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        ERR_clear_error()
        var read = 0
        if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &read) == 1 { return read }
        let code = SSL_get_error(ssl, 0)
        if code == SSL_ERROR_WANT_READ { return 0 }
        if code == SSL_ERROR_ZERO_RETURN { throw TLSError.recordFailed("peer closed the TLS session") }
        throw TLSError.recordFailed(drainOpenSSLErrors(or: "undecryptable record"))
    }

    /// Decrypts everything fed so far. Returns nil when it held no application data
    /// (e.g. only part of a record). The Data owns a pooled buffer (no further copy).
    func readPlaintext() throws -> Data? {
        var capacity = Int(fm_BIO_pending(frames)) + Int(SSL_pending(ssl)) + 64
        guard let first = BufferPool.shared.take(atLeast: capacity) else {
            throw TLSError.recordFailed("out of memory for \(capacity) plaintext bytes")
        }
        var buffer = first.buffer
        capacity = first.capacity
        var length = 0
        while true {
            if length == capacity {
                guard let grown = realloc(buffer, capacity * 2) else {
                    BufferPool.shared.recycle(buffer, capacity: capacity)
                    throw TLSError.recordFailed("out of memory for \(capacity * 2) plaintext bytes")
                }
                buffer = grown
                capacity *= 2
            }
            ERR_clear_error()
            var read = 0
            let rc = SSL_read_ex(ssl, buffer + length, capacity - length, &read)
            if rc == 1 {
                length += read
                continue
            }
            let code = SSL_get_error(ssl, 0)
            if code == SSL_ERROR_WANT_READ { break }
            BufferPool.shared.recycle(buffer, capacity: capacity)
            if code == SSL_ERROR_ZERO_RETURN { throw TLSError.recordFailed("peer closed the TLS session") }
            throw TLSError.recordFailed(drainOpenSSLErrors(or: "undecryptable record"))
        }
        guard length > 0 else {
            BufferPool.shared.recycle(buffer, capacity: capacity)
            return nil
        }
        let finalCapacity = capacity
        return Data(bytesNoCopy: buffer, count: length, deallocator: .custom { pointer, _ in
            BufferPool.shared.recycle(pointer, capacity: finalCapacity)
        })
    }

    /// The verified peer certificate's common name, or its first DNS SAN when it has no CN.
    var peerName: String? {
        guard let certificate = SSL_get0_peer_certificate(ssl) else { return nil }
        return OwnedCertificate.commonName(of: certificate)
    }
}
