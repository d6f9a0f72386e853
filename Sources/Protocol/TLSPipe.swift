// Two TLS 1.3 sessions joined back to back in memory, with no socket in between: the cost
// of our record layer alone (encrypt, move ciphertext as one frame, decrypt). `fedmerge bench
// wire` compares the real link against it.

import Foundation

public final class TLSPipe: @unchecked Sendable {
    private let client: TLSSession
    private let server: TLSSession
    /// Reused "frame" between the two sessions, like a ZeroMQ message buffer.
    private var frame: UnsafeMutableRawBufferPointer

    /// Runs a full mutual-certificate handshake between `client` and `server` configurations.
    public init(server serverTLS: TLSConfiguration, client clientTLS: TLSConfiguration, serverName: String) throws {
        client = try TLSSession(context: TLSContext(clientTLS, role: .client), serverName: serverName)
        server = try TLSSession(context: TLSContext(serverTLS, role: .server))
        frame = .allocate(byteCount: 1 << 16, alignment: 64)
        var clientDone = false, serverDone = false
        for _ in 0..<16 where !(clientDone && serverDone) {
            clientDone = try client.advanceHandshake()
            try move(from: client, to: server)
            serverDone = try server.advanceHandshake()
            try move(from: server, to: client)
        }
        guard clientDone && serverDone else { throw TLSError.handshakeFailed("in-memory handshake did not complete") }
    }

    deinit { frame.deallocate() }

    private func move(from source: TLSSession, to destination: TLSSession) throws {
        let count = source.pendingOutput
        guard count > 0 else { return }
        if frame.count < count {
            frame.deallocate()
            frame = .allocate(byteCount: count, alignment: 64)
        }
        let slice = UnsafeMutableRawBufferPointer(rebasing: frame[0..<count])
        source.drainOutput(into: slice)
        try destination.feed(UnsafeRawBufferPointer(slice))
    }

    /// Encrypts `plaintext` on the client side, hands the records to the server side as one
    /// frame and decrypts them there. Returns the plaintext byte count that came out.
    @discardableResult
    public func transfer(_ plaintext: UnsafeRawBufferPointer) throws -> Int {
        try client.write(plaintext)
        try move(from: client, to: server)
        return try server.readPlaintext()?.count ?? 0
    }
}
