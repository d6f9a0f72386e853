// ByteStream: the bytes of a file, stdin or an in-memory buffer, read in blocks with a little
// look-ahead, so the CSV and line parsers walk inputs of any size in bounded memory.

import Foundation

final class ByteStream {
    private let handle: FileHandle?
    private var buffer: [UInt8]
    private var position = 0
    private var exhausted: Bool
    static let blockSize = 1 << 20

    /// Streams from an open handle (a file or stdin); the handle is read, never closed here.
    init(handle: FileHandle) {
        self.handle = handle
        buffer = []
        exhausted = false
    }

    /// Walks bytes already in memory.
    init(data: Data) {
        handle = nil
        buffer = [UInt8](data)
        exhausted = true
    }

    /// The byte `ahead` positions past the current one, or nil past the end.
    @inline(__always)
    func peek(_ ahead: Int = 0) throws -> UInt8? {
        if position + ahead < buffer.count { return buffer[position + ahead] }
        try fill(atLeast: ahead + 1)
        return position + ahead < buffer.count ? buffer[position + ahead] : nil
    }

    @inline(__always)
    func advance(_ n: Int = 1) { position += n }

    /// The bytes up to the next LF (without it, and without a CR before it), or nil at the end.
    func nextLine() throws -> [UInt8]? {
        var searchFrom = position
        while true {
            if let lf = buffer[searchFrom...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = lf
                if end > position && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = Array(buffer[position..<end])
                position = lf + 1
                return line
            }
            let scanned = buffer.count - position
            try fill(atLeast: scanned + 1)
            if buffer.count - position <= scanned {
                // No more input: the last line has no LF.
                guard position < buffer.count else { return nil }
                var end = buffer.count
                if buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = Array(buffer[position..<end])
                position = buffer.count
                return line
            }
            searchFrom = position + scanned
        }
    }

    /// Reads blocks until `count` bytes from the current position are buffered or the input ends.
    private func fill(atLeast count: Int) throws {
        guard !exhausted, let handle else { return }
        if position > 0 {
            buffer.removeFirst(position)
            position = 0
        }
        while buffer.count < count {
            guard let block = try handle.read(upToCount: Self.blockSize), !block.isEmpty else { exhausted = true; return }
            buffer.append(contentsOf: block)
        }
    }
}
