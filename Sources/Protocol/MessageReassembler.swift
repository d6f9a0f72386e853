// Cuts one link's TLS plaintext stream back into messages ([u32 length][message], see
// SecureFraming). The length is checked against MessageLimits before a byte is allocated, and
// plaintext is decrypted straight into the message's own buffer (one copy, as before framing).

import Foundation

/// One per link, used from the link's thread. A class because it owns a malloc'd buffer.
/// Public for the fuzzer (Sources/ProtocolFuzz), which feeds it bytes without TLS.
public final class MessageReassembler {
    private let limit: Int
    private var length: [UInt8] = [0, 0, 0, 0]
    private var lengthFilled = 0
    /// The message being filled: a BufferPool buffer of `capacity` bytes, `count` expected.
    private var body: (buffer: UnsafeMutableRawPointer, capacity: Int, count: Int, filled: Int)?

    public init(limits: MessageLimits) {
        limit = limits.maxMessageBytes
    }

    deinit {
        if let body { BufferPool.shared.recycle(body.buffer, capacity: body.capacity) }
    }

    /// The next whole message from what `session` has been fed, or nil when it needs more
    /// bytes. Throws `messageTooLong` for a length above the limit (the stream cannot be
    /// resynchronised after that: end the link), or the session's TLSError.
    func next(from session: TLSSession) throws -> Data? {
        try next(reading: session.read(into:))
    }

    /// The same over any byte source: `read` fills at most the buffer it is given and returns
    /// how many bytes it wrote, 0 when it has none now.
    public func next(reading read: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Data? {
        while true {
            if var current = body {
                let got = try read(UnsafeMutableRawBufferPointer(start: current.buffer + current.filled, count: current.count - current.filled))
                guard got > 0 else { return nil }
                current.filled += got
                guard current.filled == current.count else { body = current; continue }
                body = nil
                let capacity = current.capacity
                return Data(bytesNoCopy: current.buffer, count: current.count, deallocator: .custom { pointer, _ in
                    BufferPool.shared.recycle(pointer, capacity: capacity)
                })
            }
            let got = try length.withUnsafeMutableBytes { raw in
                try read(UnsafeMutableRawBufferPointer(rebasing: raw[lengthFilled...]))
            }
            guard got > 0 else { return nil }
            lengthFilled += got
            guard lengthFilled == SecureFraming.lengthBytes else { continue }
            lengthFilled = 0
            let count = Int(length.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self)) })
            guard count <= limit else { throw MessageDecodingError.messageTooLong(length: count, limit: limit) }
            // Empty or short: the codec names what is wrong with it.
            guard count >= MessageCodec.prefixBytes else { return Data(count: count) }
            guard let fresh = BufferPool.shared.take(atLeast: count) else {
                throw TLSError.recordFailed("out of memory for a message of \(count) bytes")
            }
            body = (fresh.buffer, fresh.capacity, count, 0)
        }
    }
}
