// Atomic file replacement: write to a temporary name in the same directory, fsync, rename,
// fsync the directory. A crash leaves either the old file or the new one, never a mix.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum AtomicFile {
    /// Writes `data` to `path` atomically (mode `permissions`).
    public static func write(_ data: Data, to path: String, permissions: mode_t = 0o644) throws {
        try write(to: path, permissions: permissions) { fd in
            try data.withUnsafeBytes { raw in try writeAll(fd: fd, raw, path: path) }
        }
    }

    /// Opens a temporary file beside `path`, lets `body` fill it through the descriptor, then
    /// fsyncs and renames it over `path`. On any error the temporary file is removed.
    public static func write(to path: String, permissions: mode_t = 0o644, _ body: (Int32) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard fd >= 0 else { throw SafeTensorsError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        var renamed = false
        defer {
            if !renamed { unlink(temporary) }
        }
        do {
            try body(fd)
            guard fsync(fd) == 0 else { throw SafeTensorsError.writeFailed(path: path, reason: "fsync: " + String(cString: strerror(errno))) }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else { throw SafeTensorsError.writeFailed(path: path, reason: "close: " + String(cString: strerror(errno))) }
        guard rename(temporary, path) == 0 else { throw SafeTensorsError.writeFailed(path: path, reason: "rename: " + String(cString: strerror(errno))) }
        renamed = true
        syncDirectory(directory)
    }

    /// Writes every byte of `bytes` to `fd`, retrying short writes and EINTR.
    public static func writeAll(fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, min(bytes.count - offset, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError.writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
            offset += n
        }
    }

    /// fsyncs a directory so a rename inside it is durable.
    public static func syncDirectory(_ directory: String) {
        let dfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}
