// Owner of one libzmq socket (and the process-wide context): options, bind/connect,
// multipart send/receive, polling. libzmq sockets are not thread-safe: one thread at a time.

import CZMQ
import Foundation

/// A failed libzmq call, with errno and libzmq's own message.
public struct ZMQError: Error, Equatable, Sendable, CustomStringConvertible {
    public var call: String
    public var code: Int32
    public var description: String { "\(call) failed: \(String(cString: zmq_strerror(code))) (errno \(code))" }

    static func last(_ call: String) -> ZMQError { ZMQError(call: call, code: zmq_errno()) }
}

/// The one libzmq context of the process (its I/O thread serves every socket).
final class ZMQContext: @unchecked Sendable {
    static let shared = ZMQContext()
    let handle: UnsafeMutableRawPointer
    private init() {
        // zmq_ctx_new fails only when the process is out of file descriptors at start-up.
        handle = zmq_ctx_new()!
    }
}

public enum ZMQSocketType: Sendable {
    /// Raw TCP through libzmq: every connection gets an id the socket makes up itself (a peer
    /// cannot choose it), arrives as [id][bytes] messages, and [id][empty] opens or ends it.
    /// The secure link runs on this (SecureServer.swift says why not ROUTER/DEALER).
    case stream
    /// ZeroMQ's own framing; only the plain-ZeroMQ reference in `fedmerge bench wire` and tests use these.
    case router, dealer

    var raw: Int32 {
        switch self {
        case .stream: ZMQ_STREAM
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        }
    }
}

/// One libzmq socket. `@unchecked Sendable` so its owner can move it to a thread; the caller
/// guarantees one thread at a time (libzmq's rule).
public final class ZMQSocket: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private var closed = false

    public init(_ type: ZMQSocketType) throws {
        guard let socket = zmq_socket(ZMQContext.shared.handle, type.raw) else { throw ZMQError.last("zmq_socket") }
        handle = socket
        // Closing must never hang the process on unsent frames.
        try setOption(ZMQ_LINGER, Int32(0))
    }

    deinit { close() }

    public func close() {
        guard !closed else { return }
        closed = true
        zmq_close(handle)
    }

    public func setOption(_ option: Int32, _ value: Int32) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    public func setOption(_ option: Int32, _ value: Int64) throws {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    /// How long `close` may keep sending queued frames (0, the default here: drop them).
    public func setLinger(milliseconds: Int32) throws { try setOption(ZMQ_LINGER, milliseconds) }

    /// Largest frame libzmq will accept from a peer; a larger one drops the connection.
    public func setMaxMessageSize(_ bytes: Int) throws { try setOption(ZMQ_MAXMSGSIZE, Int64(bytes)) }

    public func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("zmq_bind(\(endpoint))") }
    }

    public func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("zmq_connect(\(endpoint))") }
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*` to the ephemeral port).
    public func lastEndpoint() throws -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { throw ZMQError.last("zmq_getsockopt(LAST_ENDPOINT)") }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) for a readable message; true if one is ready.
    public func waitReadable(timeoutMilliseconds: Int) throws -> Bool {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, timeoutMilliseconds)
        if rc < 0 {
            if zmq_errno() == EINTR { return false }
            throw ZMQError.last("zmq_poll")
        }
        return rc > 0 && (item.revents & Int16(ZMQ_POLLIN)) != 0
    }

    /// Sends one frame of `bytes` (copied into libzmq's buffer); `more` marks a multipart continuation.
    public func send(_ bytes: UnsafeRawBufferPointer, more: Bool = false) throws {
        let flags: Int32 = more ? ZMQ_SNDMORE : 0
        while zmq_send(handle, bytes.baseAddress, bytes.count, flags) < 0 {
            if zmq_errno() == EINTR { continue }
            throw ZMQError.last("zmq_send")
        }
    }

    /// Like `send`, but returns false at once instead of waiting when the frame cannot be
    /// queued now (EAGAIN: on STREAM, that connection's pipe is full or closing).
    func sendNow(_ data: Data, more: Bool = false) throws -> Bool {
        let flags: Int32 = (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT
        return try data.withUnsafeBytes { bytes in
            while zmq_send(handle, bytes.baseAddress, bytes.count, flags) < 0 {
                let code = zmq_errno()
                if code == EINTR { continue }
                if code == EAGAIN { return false }
                throw ZMQError(call: "zmq_send", code: code)
            }
            return true
        }
    }

    public func send(_ data: Data, more: Bool = false) throws {
        try data.withUnsafeBytes { try send($0, more: more) }
    }

    /// STREAM only: closes the TCP connection `id` ([id][empty frame]) without waiting. Small
    /// messages queued to it before (an alert, REFUSED, ERROR) are written out first. False if
    /// its pipe is full right now (retry later); an id already gone counts as closed.
    @discardableResult
    func closeConnection(_ id: Data) -> Bool {
        do {
            guard try sendNow(id, more: true) else { return false }
            try send(Data())
        } catch {}
        return true
    }

    /// Sends `count` bytes at `buffer` (from BufferPool, `capacity` bytes) as one frame without
    /// copying: ZeroMQ owns the buffer from here on and returns it to the pool once the bytes
    /// are on the wire, even on failure.
    func send(taking buffer: UnsafeMutableRawPointer, count: Int, capacity: Int, more: Bool = false) throws {
        var message = zmq_msg_t()
        guard zmq_msg_init_data(&message, buffer, count, BufferPool.zmqRecycle, UnsafeMutableRawPointer(bitPattern: capacity)) == 0 else {
            BufferPool.shared.recycle(buffer, capacity: capacity)
            throw ZMQError.last("zmq_msg_init_data")
        }
        try send(message: &message, more: more)
    }

    /// Sends one frame of `count` bytes that `fill` writes straight into libzmq's message
    /// buffer (so the bytes are copied once, by `fill`, not again by zmq_send).
    public func send(count: Int, more: Bool = false, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        var message = zmq_msg_t()
        guard zmq_msg_init_size(&message, count) == 0 else { throw ZMQError.last("zmq_msg_init_size") }
        do {
            try fill(UnsafeMutableRawBufferPointer(start: zmq_msg_data(&message), count: count))
        } catch {
            zmq_msg_close(&message)
            throw error
        }
        try send(message: &message, more: more)
    }

    /// Sends an initialised message; on failure closes it (which releases its buffer).
    private func send(message: inout zmq_msg_t, more: Bool) throws {
        let flags: Int32 = more ? ZMQ_SNDMORE : 0
        while zmq_msg_send(&message, handle, flags) < 0 {
            if zmq_errno() == EINTR { continue }
            let failure = ZMQError.last("zmq_msg_send")
            zmq_msg_close(&message)
            throw failure
        }
    }

    /// Most frames one message may have; extra frames are read and discarded so the socket
    /// stays in step, and the message is reported with `truncated` set.
    public static let maxFrames = 8

    /// Receives one whole multipart message, handing each frame's bytes to `body` without
    /// copying them (valid only during the call). Returns false if nothing was ready and
    /// `wait` is false. `truncated` tells that frames beyond `maxFrames` were dropped.
    public func receiveFrames(wait: Bool = true, _ body: (_ frames: [UnsafeRawBufferPointer], _ truncated: Bool) throws -> Void) throws -> Bool {
        // zmq_msg_t must not be moved once initialised (small messages live inside it), so
        // the frames are received into fixed storage rather than appended to an array.
        let storage = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: Self.maxFrames)
        var used = 0
        defer {
            for i in 0..<used { zmq_msg_close(storage + i) }
            storage.deallocate()
        }
        var truncated = false
        while true {
            let slot = storage + min(used, Self.maxFrames - 1)
            if used == Self.maxFrames {
                // Reuse the last slot as a sink for frames beyond the limit.
                zmq_msg_close(slot)
                used -= 1
                truncated = true
            }
            zmq_msg_init(slot)
            let flags: Int32 = (wait || used > 0) ? 0 : ZMQ_DONTWAIT
            if zmq_msg_recv(slot, handle, flags) < 0 {
                let code = zmq_errno()
                zmq_msg_close(slot)
                if code == EINTR { continue }
                if code == EAGAIN && used == 0 { return false }
                throw ZMQError(call: "zmq_msg_recv", code: code)
            }
            used += 1
            if zmq_msg_more(slot) == 0 { break }
        }
        var frames: [UnsafeRawBufferPointer] = []
        frames.reserveCapacity(used)
        for i in 0..<used {
            frames.append(UnsafeRawBufferPointer(start: zmq_msg_data(storage + i), count: zmq_msg_size(storage + i)))
        }
        try body(frames, truncated)
        return true
    }
}
