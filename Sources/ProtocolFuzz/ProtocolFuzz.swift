// Fuzz entry point for the bytes a peer controls: one input is the plaintext stream of a link,
// [u32 big-endian length][encoded message] records exactly as inside TLS; it is cut back into
// messages by MessageReassembler (fed in small pieces, as TCP delivers them), each goes through
// MessageCodec.decode and, when it is part of a transfer, into a fresh ChunkReceiver. Built two ways:
//   scripts/fuzz-protocol.sh   → libFuzzer binary (-sanitize=fuzzer, -DFUZZING; libFuzzer owns main)
//   swift run ProtocolFuzz F…  → replays saved inputs (crash reproducer, no libFuzzer needed)

import Foundation
import Logging
import Protocol

/// Spool directory, emptied before each input so no state crosses inputs (reproducible crashes).
private let spool = NSTemporaryDirectory() + "fedmerge-fuzz-\(getpid())"

/// The receiver logs every offer; at fuzzing rates that would be all the fuzzer does.
private let quiet: Logger = {
    var logger = Logger(label: "fedmerge.fuzz")
    logger.logLevel = .critical
    return logger
}()

/// Small caps so the fuzzer explores limits rather than allocating.
private let codec = MessageCodec(limits: MessageLimits(maxHeaderBytes: 4096, maxPayloadBytes: 1 << 16))

func fuzzOneInput(_ input: UnsafeRawBufferPointer) {
    try? FileManager.default.removeItem(atPath: spool)
    guard let receiver = try? ChunkReceiver(spool: spool, maxFileSize: 1 << 20, syncEachChunk: false, logger: quiet) else { return }
    let reassembler = MessageReassembler(limits: codec.limits)
    // Pieces of 1…13 bytes (the size varies with the input) so records straddle reads.
    let piece = 1 + input.count % 13
    var position = 0
    let read: (UnsafeMutableRawBufferPointer) -> Int = { buffer in
        let n = min(buffer.count, piece, input.count - position)
        if n > 0 { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: input[position..<(position + n)])) }
        position += n
        return n
    }
    while true {
        // An oversize length ends the stream, as it ends a link.
        guard let record = try? reassembler.next(reading: read) else { break }
        guard let message = try? codec.decode(record) else { continue }
        if let outcome = try? receiver.handle(message), let file = outcome.completed {
            // A commit must only ever publish bytes with the offered digest.
            guard (try? SHA256Hasher.hashFile(file.path)) == file.sha256 else { fatalError("committed \(file.path) with a wrong digest") }
            try? FileManager.default.removeItem(atPath: file.path)
        }
    }
}

#if FUZZING
// SwiftPM links an executable's entry as <target>_main, so libFuzzer's own main is not used;
// ours hands control to libFuzzer's driver (LLVMFuzzerRunDriver, LLVM ≥ 11) instead.
@_silgen_name("LLVMFuzzerRunDriver")
private func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                             _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOneInput(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
struct ProtocolFuzzDriver {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runFuzzerDriver(&argc, &argv) { data, size in LLVMFuzzerTestOneInput(data, size) })
    }
}
#else
@main
struct ProtocolFuzzReplay {
    static func main() throws {
        let files = CommandLine.arguments.dropFirst()
        guard !files.isEmpty else {
            print("usage: ProtocolFuzz INPUT… (replays fuzz inputs; build with scripts/fuzz-protocol.sh to fuzz)")
            return
        }
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            data.withUnsafeBytes { fuzzOneInput($0) }
            print("ok \(file)")
        }
    }
}
#endif
