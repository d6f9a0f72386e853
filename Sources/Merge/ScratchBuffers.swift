// ScratchBuffers: fp64 work buffers lent to the per-linear tasks of a merge and taken back,
// so folding K models into 37 linears does not map, fault in and unmap a fresh multi-megabyte
// buffer per model and linear (at MiniLM sizes that page-fault time was a tenth of a RegMean
// merge). Tasks run concurrently (ParallelLinears), hence the lock; buffers are never shared
// while lent.

import Foundation

final class ScratchBuffers: @unchecked Sendable {
    private var free: [UnsafeMutableBufferPointer<Double>] = []
    private let lock = NSLock()

    /// Runs `body` with a buffer of at least `count` doubles (contents undefined).
    func with<R>(count: Int, _ body: (UnsafeMutablePointer<Double>) throws -> R) rethrows -> R {
        let buffer = take(count)
        defer { give(buffer) }
        return try body(buffer.baseAddress!)
    }

    private func take(_ count: Int) -> UnsafeMutableBufferPointer<Double> {
        lock.lock()
        // The smallest free buffer that fits, so the large ones stay for the large linears.
        let index = free.indices.filter { free[$0].count >= count }.min { free[$0].count < free[$1].count }
        let found = index.map { free.remove(at: $0) }
        lock.unlock()
        return found ?? .allocate(capacity: max(count, 1))
    }

    private func give(_ buffer: UnsafeMutableBufferPointer<Double>) {
        lock.lock(); free.append(buffer); lock.unlock()
    }

    deinit { for b in free { b.deallocate() } }
}
