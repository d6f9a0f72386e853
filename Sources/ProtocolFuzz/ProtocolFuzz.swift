// Fuzz entry point for the bytes a peer controls: one input is a sequence of
// [u32 big-endian length][encoded message] records; each goes through MessageCodec.decode and,
// when it is part of a transfer, into a fresh ChunkReceiver. Built two ways:
//   scripts/fuzz-protocol.sh   → libFuzzer binary (-sanitize=fuzzer, -DFUZZING; libFuzzer owns main)
//   swift run ProtocolFuzz F…  → replays saved inputs (crash reproducer, no libFuzzer needed)

import Foundation
import Protocol

/// Spool shared by all inputs (each input gets its own receiver, so no state crosses inputs).
private let spool: String = {
    let path = NSTemporaryDirectory() + "fedmerge-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// Small caps so the fuzzer explores limits rather than allocating.
private let codec = MessageCodec(limits: MessageLimits(maxHeaderBytes: 4096, maxPayloadBytes: 1 << 16))

func fuzzOneInput(_ input: UnsafeRawBufferPointer) {
    guard let receiver = try? ChunkReceiver(spool: spool, maxFileSize: 1 << 20, syncEachChunk: false) else { return }
    var position = 0
    while position + 4 <= input.count {
        let length = Int(UInt32(bigEndian: input.loadUnaligned(fromByteOffset: position, as: UInt32.self)))
        position += 4
        let end = min(input.count, position + length)
        let record = Data(input[position..<end])
        position = end
        guard let message = try? codec.decode(record) else { continue }
        if let outcome = try? receiver.handle(message), let file = outcome.completed {
            // A commit must only ever publish bytes with the offered digest.
            guard (try? SHA256Hasher.hashFile(file.path)) == file.sha256 else { fatalError("committed \(file.path) with a wrong digest") }
            try? FileManager.default.removeItem(atPath: file.path)
        }
    }
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzOneInput(UnsafeRawBufferPointer(start: data, count: size))
    return 0
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
