// Two TLS 1.3 sessions joined back to back in memory, with no socket in between: the cost
// of our record layer alone (encrypt, move ciphertext as one frame, decrypt). `fedmerge bench
// wire` compares the real link against it.

import Foundation

public final class TLSPipe: @unchecked Sendable {
    private let client: TLSSession
    private let server: TLSSession

    /// Runs a full mutual-certificate handshake between `client` and `server` configurations.
    public init(server serverTLS: TLSConfiguration, client clientTLS: TLSConfiguration, serverName: String) throws {
        client = try TLSSession(context: TLSContext(clientTLS, role: .client), serverName: serverName)
        server = try TLSSession(context: TLSContext(serverTLS, role: .server))
        var clientDone = false, serverDone = false
        for _ in 0..<16 where !(clientDone && serverDone) {
            clientDone = try client.advanceHandshake()
            try move(from: client, to: server) { serverDone = try server.advanceHandshake() }
            try move(from: server, to: client) { clientDone = try client.advanceHandshake() }
        }
        guard clientDone && serverDone else { throw TLSError.handshakeFailed("in-memory handshake did not complete") }
    }

    /// Takes `source`'s records as one frame (as a link hands them to ZeroMQ) and lends it to
    /// `destination` for `body`; then recycles it, as ZeroMQ does after sending.
    private func move(from source: TLSSession, to destination: TLSSession, _ body: () throws -> Void) throws {
        guard let output = source.takeOutput() else { return try body() }
        defer { BufferPool.shared.recycle(output.buffer, capacity: output.capacity) }
        try destination.withFrame(UnsafeRawBufferPointer(start: output.buffer, count: output.count), body)
    }

    /// Encrypts `plaintext` on the client side, hands the records to the server side as one
    /// frame and decrypts them there. Returns the plaintext byte count that came out.
    @discardableResult
    public func transfer(_ plaintext: UnsafeRawBufferPointer) throws -> Int {
        client.reserveOutput(forPlaintext: plaintext.count)
        try client.write(plaintext)
        var count = 0
        try move(from: client, to: server) { count = try server.readPlaintext()?.count ?? 0 }
        return count
    }
}
