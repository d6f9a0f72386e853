// Atomic file replacement, the one way FedMerge writes anything it must not lose or tear:
// a temporary name in the same directory, write, fsync, then rename (or link(2), to refuse
// overwriting), then fsync the directory. A crash or a full disk leaves either the old file
// or the complete new one, never a mix, and never a stray temporary file on a clean error.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum AtomicFileError: Error, Equatable, Sendable, CustomStringConvertible {
    case exists(path: String)
    case io(path: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .exists(let path): "\(path) already exists; pass --force to replace it"
        case .io(let path, let operation, let code): "\(operation) \(path) failed: \(String(cString: strerror(code)))"
        }
    }
}

public enum AtomicFile {
    /// Writes `data` to `path` with permissions `mode`. With `overwrite` false an existing
    /// file is never replaced (checked atomically by link(2)) and `.exists` is thrown.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644, overwrite: Bool = true) throws {
        try write(to: path, mode: mode, overwrite: overwrite) { fd in
            try data.withUnsafeBytes { try writeAll(fd: fd, $0, path: path) }
        }
    }

    /// Streaming form: `body` fills the temporary file through its descriptor; then it is
    /// fsynced and moved into place. On any error the temporary file is removed.
    public static func write(to path: String, mode: mode_t = 0o644, overwrite: Bool = true, _ body: (Int32) throws -> Void) throws {
        let parent = (path as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        let temporary = directory + "/.\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // O_EXCL and the final mode from the start: a key file is never readable by others, even briefly.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw AtomicFileError.io(path: temporary, operation: "create", errno: errno) }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(temporary)  // no-op after a successful rename
        }
        try body(fd)
        guard fchmod(fd, mode) == 0 else { throw AtomicFileError.io(path: temporary, operation: "chmod", errno: errno) }
        guard fsync(fd) == 0 else { throw AtomicFileError.io(path: temporary, operation: "fsync", errno: errno) }
        close(fd)
        closed = true
        if overwrite {
            guard rename(temporary, path) == 0 else { throw AtomicFileError.io(path: path, operation: "rename to", errno: errno) }
        } else if link(temporary, path) != 0 {
            if errno == EEXIST { throw AtomicFileError.exists(path: path) }
            throw AtomicFileError.io(path: path, operation: "link to", errno: errno)
        }
        try syncDirectory(directory)
    }

    /// Writes every byte of `bytes` to `fd`, retrying short writes and EINTR.
    public static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw AtomicFileError.io(path: path, operation: "write", errno: errno)
            }
            done += n
        }
    }

    /// fsyncs a directory so a rename inside it survives a crash.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw AtomicFileError.io(path: directory, operation: "open directory", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw AtomicFileError.io(path: directory, operation: "fsync directory", errno: errno) }
    }
}
