// One TLS 1.3 session run through two memory BIOs: ciphertext frames go in with `feed`,
// records to send come out with `drainOutput`. Owns the SSL object; one thread at a time.

import COpenSSL
import Foundation

final class TLSSession: @unchecked Sendable {
    private let ssl: OpaquePointer
    /// Ciphertext received from the peer, waiting for OpenSSL to read it.
    private let inbound: OpaquePointer
    /// Records OpenSSL produced, waiting to be sent as a ZeroMQ frame.
    private let outbound: OpaquePointer
    private(set) var isEstablished = false

    /// `serverName` (client side only) is checked against the server certificate's SAN/CN.
    init(context: TLSContext, serverName: String? = nil) throws {
        ERR_clear_error()
        guard let ssl = SSL_new(context.handle) else { throw TLSError.contextSetup(openSSLErrors()) }
        guard let inbound = BIO_new(BIO_s_mem()), let outbound = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.contextSetup(openSSLErrors())
        }
        // An empty memory BIO must mean "wait for more", not end of stream.
        fm_BIO_set_mem_eof_return(inbound, -1)
        fm_BIO_set_mem_eof_return(outbound, -1)
        SSL_set_bio(ssl, inbound, outbound)  // the SSL now owns both BIOs
        self.ssl = ssl
        self.inbound = inbound
        self.outbound = outbound
        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let serverName {
                guard SSL_set1_host(ssl, serverName) == 1, fm_SSL_set_tlsext_host_name(ssl, serverName) == 1 else {
                    throw TLSError.contextSetup("cannot set expected server name '\(serverName)': \(openSSLErrors())")
                }
            }
        }
    }

    deinit { SSL_free(ssl) }

    /// Hands ciphertext received from the peer to OpenSSL (copied into the inbound BIO).
    func feed(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        var written = 0
        guard BIO_write_ex(inbound, bytes.baseAddress, bytes.count, &written) == 1, written == bytes.count else {
            throw TLSError.recordFailed("cannot buffer \(bytes.count) received bytes: \(openSSLErrors())")
        }
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
        throw TLSError.handshakeFailed(failureReason())
    }

    /// Why the handshake failed: the certificate verdict if there is one, else OpenSSL's queue.
    private func failureReason() -> String {
        let queue = openSSLErrors(or: "")
        let verdict = SSL_get_verify_result(ssl)
        if verdict != X509_V_OK {
            let text = String(cString: X509_verify_cert_error_string(verdict))
            return queue.isEmpty ? "certificate rejected: \(text)" : "certificate rejected: \(text) (\(queue))"
        }
        return queue.isEmpty ? "peer closed or sent something that is not a TLS 1.3 handshake" : queue
    }

    /// Bytes of records waiting to be sent.
    var pendingOutput: Int { Int(fm_BIO_pending(outbound)) }

    /// Moves all pending records into `buffer` (whose count must be `pendingOutput`).
    func drainOutput(into buffer: UnsafeMutableRawBufferPointer) {
        var done = 0
        while done < buffer.count {
            var read = 0
            guard BIO_read_ex(outbound, buffer.baseAddress! + done, buffer.count - done, &read) == 1, read > 0 else { break }
            done += read
        }
    }

    /// All pending records as Data (for the handshake, where sizes are small).
    func drainOutput() -> Data {
        let count = pendingOutput
        guard count > 0 else { return Data() }
        var data = Data(count: count)
        data.withUnsafeMutableBytes { drainOutput(into: $0) }
        return data
    }

    /// Encrypts `plaintext` into records (≤ 16 KiB each) appended to the outbound BIO.
    func write(_ plaintext: UnsafeRawBufferPointer) throws {
        guard plaintext.count > 0 else { return }
        ERR_clear_error()
        var written = 0
        let rc = SSL_write_ex(ssl, plaintext.baseAddress, plaintext.count, &written)
        guard rc == 1, written == plaintext.count else {
            throw TLSError.recordFailed("encrypting \(plaintext.count) bytes: \(openSSLErrors())")
        }
    }

    /// Decrypts everything fed so far. Returns nil when it held no application data
    /// (e.g. only part of a record). The Data owns its buffer (no further copy).
    func readPlaintext() throws -> Data? {
        var capacity = Int(fm_BIO_pending(inbound)) + Int(SSL_pending(ssl)) + 64
        var buffer = malloc(capacity)!
        var length = 0
        while true {
            if length == capacity {
                capacity *= 2
                guard let grown = realloc(buffer, capacity) else {
                    free(buffer)
                    throw TLSError.recordFailed("out of memory for \(capacity) plaintext bytes")
                }
                buffer = grown
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
            free(buffer)
            if code == SSL_ERROR_ZERO_RETURN { throw TLSError.recordFailed("peer closed the TLS session") }
            throw TLSError.recordFailed(openSSLErrors(or: "undecryptable record"))
        }
        guard length > 0 else {
            free(buffer)
            return nil
        }
        return Data(bytesNoCopy: buffer, count: length, deallocator: .free)
    }

    /// The verified peer certificate's common name, or its first DNS SAN when it has no CN.
    var peerName: String? {
        guard let certificate = SSL_get0_peer_certificate(ssl) else { return nil }
        return CertificateNames.primaryName(of: certificate)
    }
}
