// Receiving end of a resumable file transfer: OFFER → RESUME(durable offset) → CHUNK/ACK …
// → COMMIT → verify SHA-256 → rename → COMMITTED. Transport-agnostic: feed it messages,
// send the replies it returns. Survives its own restart through the files it keeps.
//
// Spool files for name N: `N.partial` (bytes so far) and `N.partial.offer` (the offer's size
// and SHA-256, fsynced). The durable offset after a restart is the .partial file's size when
// the sidecar matches the new offer; a different offer for N restarts from zero. Bytes past
// the last fsync that a crash left behind are caught by the final SHA-256 check.

import AtomicIO
import Foundation
import Logging

public final class ChunkReceiver: @unchecked Sendable {
    /// One file arriving.
    private final class Transfer {
        let offer: Offer
        let partialPath: String
        let fd: Int32
        let hasher = SHA256Hasher()
        var offset: UInt64
        var restarts = 0
        /// For the commit log line: when this offer was accepted and where it resumed.
        let startedAt = monotonicSeconds()
        let resumedAt: UInt64
        init(offer: Offer, partialPath: String, fd: Int32, offset: UInt64) {
            self.resumedAt = offset
            self.offer = offer
            self.partialPath = partialPath
            self.fd = fd
            self.offset = offset
        }
        deinit { close(fd) }
    }

    /// The receiver's protocol state; every transition is a case in `handle(_:)`.
    private enum State {
        case idle
        case receiving(Transfer)
    }

    /// A file that was verified and renamed into place.
    public struct CompletedFile: Sendable, Equatable {
        public var transferID: String
        public var name: String
        public var path: String
        public var size: UInt64
        public var sha256: String
    }

    /// What one message produced: replies to send (in order) and maybe a completed file.
    public struct Outcome: Sendable, Equatable {
        public var replies: [Message] = []
        public var completed: CompletedFile?
    }

    public let spool: String
    public let maxFileSize: UInt64
    /// Per-name caps on top of `maxFileSize` (e.g. what a round can need of each file).
    public let sizeLimits: [String: UInt64]
    /// Whether an offer may replace a file already committed under its name with other bytes.
    public let replacesCommitted: Bool
    /// Free bytes to leave on the spool's file system after any accepted offer.
    public let diskReserve: UInt64
    /// fsync each chunk before ACKing it. Only benchmarks turn this off.
    public let syncEachChunk: Bool
    /// SHA-256 mismatches tolerated per file name before the transfer is refused.
    public static let maxDigestRestarts = 3
    private var state = State.idle
    private var digestRestarts: [String: Int] = [:]
    private let logger: Logger

    public init(spool: String, maxFileSize: UInt64 = 1 << 40, sizeLimits: [String: UInt64] = [:],
                replacesCommitted: Bool = true, diskReserve: UInt64 = 0, syncEachChunk: Bool = true,
                logger: Logger = Logger(label: "fedmerge.wire.receiver")) throws {
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        self.spool = spool
        self.maxFileSize = maxFileSize
        self.sizeLimits = sizeLimits
        self.replacesCommitted = replacesCommitted
        self.diskReserve = diskReserve
        self.syncEachChunk = syncEachChunk
        self.logger = logger
    }

    /// The transfer in progress, if any: (transfer id, durable bytes, size).
    public var progress: (transferID: String, offset: UInt64, size: UInt64)? {
        if case .receiving(let t) = state { (t.offer.transferID, t.offset, t.offer.size) } else { nil }
    }

    /// Applies one message. A thrown TransferError leaves the receiver idle with the spool
    /// intact (the sender re-OFFERs and resumes); send `error.report` to tell the peer.
    public func handle(_ message: Message) throws -> Outcome {
        do {
            switch (state, message) {
            case (_, .offer(let offer)):
                return try accept(offer)
            case (.receiving(let transfer), .chunk(let chunk, let payload)):
                return try write(chunk, payload, into: transfer)
            case (.receiving(let transfer), .commit(let commit)):
                return try finish(commit, transfer)
            case (.idle, .chunk(let chunk, _)):
                throw TransferError.unknownTransfer(chunk.transferID)
            case (.idle, .commit(let commit)):
                throw TransferError.unknownTransfer(commit.transferID)
            default:
                throw TransferError.unexpectedMessage(message.type)
            }
        } catch {
            state = .idle
            throw error
        }
    }

    // MARK: transitions

    private func accept(_ offer: Offer) throws -> Outcome {
        guard TransferName.isValid(offer.name) else { throw TransferError.invalidName(offer.name) }
        guard TransferName.isValidDigest(offer.sha256) else { throw TransferError.invalidDigest(offer.sha256) }
        let limit = min(maxFileSize, sizeLimits[offer.name] ?? .max)
        guard offer.size <= limit else { throw TransferError.fileTooLarge(name: offer.name, size: offer.size, limit: limit) }
        state = .idle  // a new offer supersedes the current one (its spool files stay)

        let finalPath = spool + "/" + offer.name
        // Already committed (e.g. we restarted after COMMITTED was lost): do not ask again.
        if let size = Self.fileSize(finalPath) {
            if UInt64(size) == offer.size, try SHA256Hasher.hashFile(finalPath) == offer.sha256 {
                logger.info("offer already committed", metadata: ["name": "\(offer.name)"])
                return Outcome(replies: [.committed(Committed(transferID: offer.transferID, name: offer.name))],
                               completed: CompletedFile(transferID: offer.transferID, name: offer.name, path: finalPath, size: offer.size, sha256: offer.sha256))
            }
            guard replacesCommitted else { throw TransferError.alreadyCommitted(name: offer.name) }
        }
        try requireSpace(for: offer, partialPath: finalPath + ".partial")

        let partialPath = finalPath + ".partial"
        let sidecarPath = partialPath + ".offer"
        let recorded = FileManager.default.contents(atPath: sidecarPath).flatMap { try? JSONDecoder().decode(OfferRecord.self, from: $0) }
        let sameOffer = recorded == OfferRecord(size: offer.size, sha256: offer.sha256)
        if !sameOffer {
            // Record the offer before any byte of it lands, so a restart knows what .partial holds.
            let record = try JSONEncoder().encode(OfferRecord(size: offer.size, sha256: offer.sha256))
            try AtomicFile.write(record, to: sidecarPath, mode: 0o644, overwrite: true)
        }
        let fd = open(partialPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TransferError.io(path: partialPath, operation: "open", errno: errno) }
        var offset: UInt64 = 0
        if sameOffer {
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                close(fd)
                throw TransferError.io(path: partialPath, operation: "stat", errno: errno)
            }
            offset = min(UInt64(info.st_size), offer.size)
        }
        guard ftruncate(fd, off_t(offset)) == 0 else {
            close(fd)
            throw TransferError.io(path: partialPath, operation: "truncate", errno: errno)
        }
        let transfer = Transfer(offer: offer, partialPath: partialPath, fd: fd, offset: offset)
        if offset > 0 {
            // Re-hash what is durable so the final check covers the whole file.
            try transfer.hasher.update(fd: fd, length: offset, path: partialPath)
        }
        state = .receiving(transfer)
        logger.info("offer accepted", metadata: ["name": "\(offer.name)", "size": "\(offer.size)", "resumeAt": "\(offset)"])
        return Outcome(replies: [.resume(Resume(transferID: offer.transferID, offset: offset))])
    }

    private func write(_ chunk: Chunk, _ payload: Data, into transfer: Transfer) throws -> Outcome {
        let id = transfer.offer.transferID
        guard chunk.transferID == id else { throw TransferError.unknownTransfer(chunk.transferID) }
        guard chunk.offset == transfer.offset else { throw TransferError.outOfOrder(transferID: id, expected: transfer.offset, got: chunk.offset) }
        guard !payload.isEmpty else { throw TransferError.emptyChunk(transferID: id, offset: chunk.offset) }
        let (end, overflow) = chunk.offset.addingReportingOverflow(UInt64(payload.count))
        guard !overflow, end <= transfer.offer.size else { throw TransferError.beyondEnd(transferID: id, end: end, size: transfer.offer.size) }
        try payload.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = pwrite(transfer.fd, raw.baseAddress! + done, raw.count - done, off_t(chunk.offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TransferError.io(path: transfer.partialPath, operation: "write", errno: errno)
                }
                done += n
            }
            transfer.hasher.update(raw)
        }
        if syncEachChunk {
            guard fdatasync(transfer.fd) == 0 else { throw TransferError.io(path: transfer.partialPath, operation: "fsync", errno: errno) }
        }
        transfer.offset = end
        return Outcome(replies: [.ack(Ack(transferID: id, durableOffset: end))])
    }

    private func finish(_ commit: Commit, _ transfer: Transfer) throws -> Outcome {
        let offer = transfer.offer
        guard commit.transferID == offer.transferID else { throw TransferError.unknownTransfer(commit.transferID) }
        guard transfer.offset == offer.size else {
            throw TransferError.commitBeforeComplete(transferID: offer.transferID, received: transfer.offset, size: offer.size)
        }
        let digest = transfer.hasher.finalizeHex()
        guard digest == offer.sha256, commit.sha256 == offer.sha256 else {
            // Never rename bad bytes: start this file over from zero (a few times at most).
            transfer.restarts += 1
            digestRestarts[offer.name, default: 0] += 1
            logger.error("SHA-256 mismatch; restarting transfer", metadata: [
                "name": "\(offer.name)", "offered": "\(offer.sha256)", "committed": "\(loggable(commit.sha256))", "received": "\(digest)",
            ])
            guard ftruncate(transfer.fd, 0) == 0 else { throw TransferError.io(path: transfer.partialPath, operation: "truncate", errno: errno) }
            transfer.offset = 0
            if digestRestarts[offer.name]! > Self.maxDigestRestarts {
                throw TransferError.tooManyRestarts(transferID: offer.transferID, restarts: digestRestarts[offer.name]!)
            }
            return Outcome(replies: [.resume(Resume(transferID: offer.transferID, offset: 0))])
        }
        guard fsync(transfer.fd) == 0 else { throw TransferError.io(path: transfer.partialPath, operation: "fsync", errno: errno) }
        let finalPath = spool + "/" + offer.name
        guard rename(transfer.partialPath, finalPath) == 0 else { throw TransferError.io(path: finalPath, operation: "rename to", errno: errno) }
        unlink(transfer.partialPath + ".offer")
        do { try AtomicFile.syncDirectory(spool) } catch { throw TransferError.io(path: spool, operation: "fsync directory", errno: errno) }
        state = .idle
        let seconds = monotonicSeconds() - transfer.startedAt
        let received = Double(offer.size - transfer.resumedAt)
        logger.info("file committed", metadata: [
            "name": "\(offer.name)", "size": "\(offer.size)", "receivedBytes": "\(offer.size - transfer.resumedAt)",
            "seconds": "\(String(format: "%.3f", seconds))", "MiBps": "\(String(format: "%.1f", received / 1_048_576 / max(seconds, 1e-9)))",
        ])
        return Outcome(replies: [.committed(Committed(transferID: offer.transferID, name: offer.name))],
                       completed: CompletedFile(transferID: offer.transferID, name: offer.name, path: finalPath, size: offer.size, sha256: digest))
    }

    // MARK: helpers

    /// The offer's remaining bytes must fit on the spool's file system with `diskReserve` to spare.
    private func requireSpace(for offer: Offer, partialPath: String) throws {
        var info = statvfs()
        guard statvfs(spool, &info) == 0 else { return }
        let available = UInt64(info.f_bavail) * UInt64(info.f_frsize)
        let have = UInt64(max(0, Self.fileSize(partialPath) ?? 0))
        let needed = offer.size > have ? offer.size - have : 0
        guard needed == 0 || needed.addingReportingOverflow(diskReserve).partialValue <= available else {
            throw TransferError.insufficientSpace(name: offer.name, size: offer.size, available: available, directory: spool)
        }
    }

    /// What the sidecar records about the offer a .partial file belongs to.
    private struct OfferRecord: Codable, Equatable {
        var size: UInt64
        var sha256: String
    }

    private static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }
}
