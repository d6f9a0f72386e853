// Sending end of a resumable file transfer with credit-based flow control: at most `window`
// chunks are unacknowledged at any time; each ACK returns credit for more. Transport-agnostic:
// it calls `send` for each message and is fed the receiver's replies.

import Foundation

public final class ChunkSender: @unchecked Sendable {
    /// The sender's protocol state; every transition is a case in `handle(_:send:)`.
    public enum State: Equatable, Sendable {
        case idle
        /// OFFER sent; waiting for RESUME with the durable offset.
        case offered
        case sending(sent: UInt64, acked: UInt64)
        /// All bytes acknowledged; COMMIT sent.
        case committing
        case committed
        case failed(TransferError)
    }

    public let path: String
    public let offer: Offer
    public let chunkSize: Int
    public let window: Int
    public let maxRestarts: Int
    public private(set) var state = State.idle
    private let fd: Int32
    /// One chunk's bytes; reused for every chunk (the link encrypts or copies it before `send` returns).
    private let buffer: UnsafeMutableRawBufferPointer
    private var restarts = 0

    /// Opens `path` and hashes it (one read pass) unless `sha256` is given.
    public init(path: String, name: String, transferID: String = UUID().uuidString, sha256: String? = nil,
                chunkSize: Int = 4 << 20, window: Int = 4, maxRestarts: Int = 3) throws {
        precondition(chunkSize > 0 && window > 0, "chunkSize and window must be positive")
        guard TransferName.isValid(name) else { throw TransferError.invalidName(name) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TransferError.io(path: path, operation: "open", errno: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            throw TransferError.io(path: path, operation: "stat", errno: errno)
        }
        let digest: String
        do { digest = try sha256 ?? SHA256Hasher.hashFile(path) } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.path = path
        self.offer = Offer(transferID: transferID, name: name, size: UInt64(info.st_size), sha256: digest)
        self.chunkSize = chunkSize
        self.window = window
        self.maxRestarts = maxRestarts
        self.buffer = .allocate(byteCount: chunkSize, alignment: 64)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    public var isCommitted: Bool { state == .committed }

    /// Sends OFFER. Call it to begin, and again on a new link to resume where the receiver's
    /// durable bytes end (it answers with RESUME).
    public func start(send: (Message) throws -> Void) throws {
        guard state != .committed else { return }
        state = .offered
        try send(.offer(offer))
    }

    /// Applies one reply from the receiver and sends what it allows. Returns false if the
    /// message is not about this transfer (the caller handles it).
    @discardableResult
    public func handle(_ message: Message, send: (Message) throws -> Void) throws -> Bool {
        let id = offer.transferID
        switch (state, message) {
        case (.offered, .resume(let resume)) where resume.transferID == id,
             (.sending, .resume(let resume)) where resume.transferID == id,
             (.committing, .resume(let resume)) where resume.transferID == id:
            guard resume.offset <= offer.size else { try fail(.resumeBeyondEnd(transferID: id, offset: resume.offset, size: offer.size)) }
            if state == .committing {
                // The receiver rejected the SHA-256 and restarts from zero.
                restarts += 1
                guard restarts <= maxRestarts else { try fail(.tooManyRestarts(transferID: id, restarts: restarts)) }
            }
            state = .sending(sent: resume.offset, acked: resume.offset)
            try pump(send)
        case (.sending(let sent, let acked), .ack(let ack)) where ack.transferID == id:
            guard ack.durableOffset <= sent else { try fail(.ackBeyondSent(transferID: id, acked: ack.durableOffset, sent: sent)) }
            state = .sending(sent: sent, acked: max(acked, ack.durableOffset))
            try pump(send)
        case (.committing, .committed(let committed)) where committed.transferID == id,
             (.offered, .committed(let committed)) where committed.transferID == id:
            // From .offered: the receiver already had this exact file.
            state = .committed
        default:
            return false
        }
        return true
    }

    private func fail(_ error: TransferError) throws -> Never {
        state = .failed(error)
        throw error
    }

    /// Sends chunks while credit remains; COMMIT once everything is acknowledged.
    private func pump(_ send: (Message) throws -> Void) throws {
        guard case .sending(var sent, let acked) = state else { return }
        let credit = UInt64(window) * UInt64(chunkSize)
        while sent < offer.size && sent - acked < credit {
            let length = Int(min(UInt64(chunkSize), offer.size - sent))
            var done = 0
            while done < length {
                let n = pread(fd, buffer.baseAddress! + done, length - done, off_t(sent) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    // The file shrank or failed under us; the transfer cannot be completed as offered.
                    try fail(.io(path: path, operation: "read", errno: n < 0 ? errno : EIO))
                }
                done += n
            }
            // No copy: the Data borrows the reusable buffer for the duration of `send`.
            let payload = Data(bytesNoCopy: buffer.baseAddress!, count: length, deallocator: .none)
            try send(.chunk(Chunk(transferID: offer.transferID, offset: sent), payload: payload))
            sent += UInt64(length)
            state = .sending(sent: sent, acked: acked)
        }
        if acked == offer.size {
            state = .committing
            try send(.commit(Commit(transferID: offer.transferID, sha256: offer.sha256)))
        }
    }
}
