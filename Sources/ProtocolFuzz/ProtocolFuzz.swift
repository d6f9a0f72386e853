// Fuzz entry point for the bytes a peer controls: one input is the plaintext stream of a link,
// [u32 big-endian length][encoded message] records exactly as inside TLS; it is cut back into
// messages by MessageReassembler (fed in small pieces, as TCP delivers them), each goes through
// MessageCodec.decode and, when it is part of a transfer, into a fresh ChunkReceiver; relayed
// secure-sum keys go through SignedPublicKey(wire:) and FederationTrust.verify (OpenSSL's PEM,
// X.509 and ECDSA parsers on peer bytes), revealed seeds through their hex decoder. Built two ways:
//   scripts/fuzz-protocol.sh   → libFuzzer binary (-sanitize=fuzzer, -DFUZZING; libFuzzer owns main)
//   swift run ProtocolFuzz F…  → replays saved inputs (crash reproducer, no libFuzzer needed)

import Foundation
import Logging
import Protocol
import SecureSum

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

/// A federation CA made once per process; relayed keys are verified against it.
private let trust: FederationTrust? = {
    let directory = NSTemporaryDirectory() + "fedmerge-fuzz-ca-\(getpid())"
    try? FileManager.default.removeItem(atPath: directory)
    guard (try? CertificateAuthority.initialize(directory: directory)) != nil else { return nil }
    return try? FederationTrust(caCertificateFile: directory + "/ca.pem")
}()

/// What an agent does with the secure-sum messages it receives before any state changes.
private func checkSecureSum(_ message: Message) {
    switch message {
    case .secureKey(let key):
        guard let signed = try? SignedPublicKey(wire: key) else { return }
        try? trust?.verify(signed, for: signed.binding)
    case .secureKeys(let relayed):
        for key in relayed.keys.prefix(8) {
            guard let signed = try? SignedPublicKey(wire: key) else { continue }
            try? trust?.verify(signed, for: KeyBinding(roundID: String(relayed.round), mergeName: relayed.merge))
        }
    case .reveal(let reveal):
        for (dropped, seed) in reveal.seeds { _ = try? PairwiseSeed(revealedHex: seed, survivor: reveal.agent, dropped: dropped) }
    case .secureScale(let scale):
        for (f, e) in zip(scale.fractionBits, scale.boundExponents) {
            guard let e, (-1074...1023).contains(e) else { continue }
            _ = FixedPointScale(fractionBits: f, bound: Double(sign: .plus, exponent: e, significand: 1), agents: scale.agents.count).isSafe
        }
    default:
        break
    }
}

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
        checkSecureSum(message)
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
