// Streaming SHA-256 through libcrypto's EVP interface (SHA-NI/AVX2 where the CPU has them).

import COpenSSL
import Foundation

/// Owner of one EVP_MD_CTX computing SHA-256 incrementally.
public final class SHA256Hasher: @unchecked Sendable {
    private let context: OpaquePointer

    public init() {
        // EVP_MD_CTX_new/DigestInit fail only on allocation failure.
        context = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        EVP_DigestUpdate(context, bytes.baseAddress, bytes.count)
    }

    public func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    /// The digest as lowercase hex; the hasher is reset for reuse.
    public func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }

    /// Feeds bytes [0, length) of the open file `fd` (`path` names it in errors), read in 4 MiB blocks.
    /// Stops early at end of file.
    public func update(fd: Int32, length: UInt64, path: String) throws {
        let blockSize = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 64)
        defer { buffer.deallocate() }
        var position: UInt64 = 0
        while position < length {
            let want = Int(min(UInt64(blockSize), length - position))
            let n = pread(fd, buffer.baseAddress, want, off_t(position))
            if n < 0 {
                if errno == EINTR { continue }
                throw TransferError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            position += UInt64(n)
        }
    }

    /// SHA-256 (hex) of the whole file at `path`.
    public static func hashFile(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TransferError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        let hasher = SHA256Hasher()
        try hasher.update(fd: fd, length: .max, path: path)
        return hasher.finalizeHex()
    }
}
