// LineOutput: where a command's result lines go — stdout as they are produced (a pipe sees
// them streaming), or a file that appears only once complete (AtomicFile), never half-written.

import AtomicIO
import Foundation

enum LineOutput {
    /// Runs `body` with a function that takes one line (without its newline).
    static func write(to path: String?, _ body: (_ line: (String) throws -> Void) throws -> Void) throws {
        if let path {
            try AtomicFile.write(to: path) { fd in
                let buffer = LineBuffer { bytes in try bytes.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: path) } }
                try body(buffer.append)
                try buffer.flush()
            }
        } else {
            let buffer = LineBuffer { bytes in try FileHandle.standardOutput.write(contentsOf: Data(bytes)) }
            try body(buffer.append)
            try buffer.flush()
        }
    }
}

/// Lines gathered into 64 KiB writes.
private final class LineBuffer {
    private var bytes: [UInt8] = []
    private let sink: ([UInt8]) throws -> Void

    init(sink: @escaping ([UInt8]) throws -> Void) {
        self.sink = sink
        bytes.reserveCapacity(1 << 16)
    }

    func append(_ line: String) throws {
        bytes.append(contentsOf: line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        if bytes.count >= 1 << 16 { try flush() }
    }

    func flush() throws {
        try sink(bytes)
        bytes.removeAll(keepingCapacity: true)
    }
}
