// Writes a whole file so that readers see either the old file or the complete new one:
// temporary name in the same directory, write, fsync, rename (or link to refuse overwrite), fsync dir.

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
    /// file is never replaced (checked atomically by link(2)), and `.exists` is thrown.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o644, overwrite: Bool) throws {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let temporary = directory + "/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // O_EXCL + the requested mode from the start: a key is never readable by others, even briefly.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw AtomicFileError.io(path: temporary, operation: "create", errno: errno) }
        var closed = false
        defer {
            if !closed { close(fd) }
            unlink(temporary)  // no-op after a successful rename
        }
        try data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AtomicFileError.io(path: temporary, operation: "write", errno: errno)
                }
                done += n
            }
        }
        guard fchmod(fd, mode) == 0 else { throw AtomicFileError.io(path: temporary, operation: "chmod", errno: errno) }
        guard fsync(fd) == 0 else { throw AtomicFileError.io(path: temporary, operation: "fsync", errno: errno) }
        close(fd)
        closed = true
        if overwrite {
            guard rename(temporary, path) == 0 else { throw AtomicFileError.io(path: path, operation: "rename to", errno: errno) }
        } else {
            if link(temporary, path) != 0 {
                if errno == EEXIST { throw AtomicFileError.exists(path: path) }
                throw AtomicFileError.io(path: path, operation: "link to", errno: errno)
            }
        }
        try syncDirectory(directory)
    }

    /// fsyncs a directory so a rename inside it survives a crash.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw AtomicFileError.io(path: directory, operation: "open directory", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw AtomicFileError.io(path: directory, operation: "fsync directory", errno: errno) }
    }
}
