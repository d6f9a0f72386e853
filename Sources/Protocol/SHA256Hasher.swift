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

    /// SHA-256 of the first `length` bytes (default: all) of the file at `path`, read in 4 MiB blocks.
    public static func hashFile(_ path: String, length: UInt64? = nil) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TransferError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        let hasher = SHA256Hasher()
        let blockSize = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 64)
        defer { buffer.deallocate() }
        var remaining = length ?? UInt64.max
        while remaining > 0 {
            let want = Int(min(UInt64(blockSize), remaining))
            let n = read(fd, buffer.baseAddress, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw TransferError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            remaining -= UInt64(n)
        }
        return hasher.finalizeHex()
    }
}
