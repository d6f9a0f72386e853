// AtomicFile: write a whole file so that readers see the old contents or the new, never a half-written file.

import Foundation
#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

enum AtomicFile {
    /// Writes `data` to "<path>.partial-<pid>", fsyncs it, renames it over `path`, then fsyncs
    /// the directory so the rename itself survives a crash.
    static func write(_ data: Data, to path: String) throws {
        let temporary = "\(path).partial-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw DatasetError.writeFailed(file: path, reason: String(cString: strerror(errno))) }
        var failure: String?
        data.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = systemWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno)); return
                }
                offset += written
            }
        }
        if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if let failure {
            unlink(temporary)
            throw DatasetError.writeFailed(file: path, reason: failure)
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw DatasetError.writeFailed(file: path, reason: reason)
        }
        let directory = (path as NSString).deletingLastPathComponent
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    }
}
