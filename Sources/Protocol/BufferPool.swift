// Recycles the large malloc'd buffers that carry TLS records and decrypted messages, so a
// stream of 4 MiB chunks reuses warm memory instead of faulting in (and zeroing) fresh pages
// for every message. Thread-safe: ZeroMQ's I/O thread hands buffers back after sending.

import CZMQ
import Foundation

final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()

    /// Buffers below this size are not worth pooling (malloc serves them from warm memory).
    static let minimumPooled = 256 << 10
    /// How many idle buffers are kept; enough for a window of chunks in flight each way.
    static let maximumIdle = 16

    private let lock = NSLock()
    private var idle: [(buffer: UnsafeMutableRawPointer, capacity: Int)] = []

    /// A malloc'd buffer of at least `count` bytes and its actual capacity.
    func take(atLeast count: Int) -> (buffer: UnsafeMutableRawPointer, capacity: Int)? {
        if count >= Self.minimumPooled {
            lock.lock()
            // Best fit, and never more than twice the need, so small requests do not pin big buffers.
            var best: Int?
            for (i, entry) in idle.enumerated() where entry.capacity >= count && entry.capacity <= 2 * count {
                if best == nil || entry.capacity < idle[best!].capacity { best = i }
            }
            if let best {
                let entry = idle.remove(at: best)
                lock.unlock()
                return entry
            }
            lock.unlock()
        }
        guard let buffer = malloc(max(count, 1)) else { return nil }
        return (buffer, max(count, 1))
    }

    /// Returns a buffer obtained from `take` (or any malloc'd buffer of that capacity).
    func recycle(_ buffer: UnsafeMutableRawPointer, capacity: Int) {
        if capacity >= Self.minimumPooled {
            lock.lock()
            if idle.count < Self.maximumIdle {
                idle.append((buffer, capacity))
                lock.unlock()
                return
            }
            lock.unlock()
        }
        free(buffer)
    }

    /// zmq_free_fn that recycles; the hint carries the capacity.
    static let zmqRecycle: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { data, hint in
        guard let data else { return }
        BufferPool.shared.recycle(data, capacity: Int(bitPattern: hint))
    }
}
