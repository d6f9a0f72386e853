// Why a chunked transfer (ChunkSender / ChunkReceiver) rejected a message or failed.

import Foundation

public enum TransferError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidName(String)
    case invalidDigest(String)
    case fileTooLarge(name: String, size: UInt64, limit: UInt64)
    case unknownTransfer(String)
    case unexpectedMessage(MessageType)
    case outOfOrder(transferID: String, expected: UInt64, got: UInt64)
    case beyondEnd(transferID: String, end: UInt64, size: UInt64)
    case emptyChunk(transferID: String, offset: UInt64)
    case commitBeforeComplete(transferID: String, received: UInt64, size: UInt64)
    case ackBeyondSent(transferID: String, acked: UInt64, sent: UInt64)
    case resumeBeyondEnd(transferID: String, offset: UInt64, size: UInt64)
    case tooManyRestarts(transferID: String, restarts: Int)
    case alreadyCommitted(name: String)
    case insufficientSpace(name: String, size: UInt64, available: UInt64, directory: String)
    case io(path: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .invalidName(let name):
            "transfer name '\(name)' is not a plain file name (1–200 of letters, digits, '-', '.', '_'; not starting with '.', not ending in .partial or .offer)"
        case .invalidDigest(let digest):
            "'\(digest.prefix(80))' is not a lowercase hex SHA-256 digest (64 characters)"
        case .fileTooLarge(let name, let size, let limit):
            "offer of \(name) with \(size) bytes exceeds the receiver's limit of \(limit) bytes"
        case .unknownTransfer(let id):
            "no transfer '\(id.prefix(80))' is in progress; send OFFER first"
        case .unexpectedMessage(let type):
            "\(type) is not part of a chunked transfer"
        case .outOfOrder(let id, let expected, let got):
            "transfer \(id): chunk at offset \(got), expected \(expected); re-OFFER to learn the durable offset"
        case .beyondEnd(let id, let end, let size):
            "transfer \(id): chunk ends at \(end), past the offered size \(size)"
        case .emptyChunk(let id, let offset):
            "transfer \(id): empty chunk at offset \(offset)"
        case .commitBeforeComplete(let id, let received, let size):
            "transfer \(id): COMMIT after \(received) of \(size) bytes"
        case .ackBeyondSent(let id, let acked, let sent):
            "transfer \(id): ACK of offset \(acked) but only \(sent) bytes were sent"
        case .resumeBeyondEnd(let id, let offset, let size):
            "transfer \(id): RESUME at \(offset), past the file size \(size)"
        case .tooManyRestarts(let id, let restarts):
            "transfer \(id): the receiver rejected the SHA-256 \(restarts) times; is the file changing while it is sent?"
        case .alreadyCommitted(let name):
            "\(name) is already committed with other contents; a committed file is never replaced"
        case .insufficientSpace(let name, let size, let available, let directory):
            "offer of \(name) with \(size) bytes does not fit: \(available) bytes free for \(directory) (a reserve is kept)"
        case .io(let path, let operation, let code):
            "\(operation) \(path) failed: \(String(cString: strerror(code)))"
        }
    }

    /// The ERROR message that tells the peer about this failure.
    public var report: Message {
        .error(ErrorReport(code: "transfer", message: description))
    }
}
