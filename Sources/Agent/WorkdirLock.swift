// One agent per workdir: an exclusive flock on `<workdir>/agent.lock`, held for the life of
// the process (the kernel releases it when the process ends, however it ends). Two agents on
// one workdir would overwrite each other's prepared model and merged downloads.

import Foundation

final class WorkdirLock {
    private let fd: Int32

    /// Takes the lock or throws `.workdirInUse` naming the holder's pid (written in the file).
    init(workdir: String, config: String) throws {
        let path = workdir + "/agent.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw AgentStartError.workdir(config: config, path: workdir, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            defer { close(fd) }
            guard code == EWOULDBLOCK else {
                throw AgentStartError.workdir(config: config, path: workdir, reason: "cannot lock \(path): \(String(cString: strerror(code)))")
            }
            let holder = FileManager.default.contents(atPath: path)
                .flatMap { Int32(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
            throw AgentStartError.workdirInUse(workdir: workdir, holder: holder)
        }
        // Ours now: record who holds it, for the message the next agent prints.
        let pid = Data("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        self.fd = fd
    }

    deinit { close(fd) }
}
