// `fedmerge bench wire`: (a) TLS 1.3 record layer alone (memory BIOs, in process),
// (b) a chunked upload over TLS on a ZeroMQ STREAM socket (raw TCP) on loopback, (c) the
// same upload over plain ZeroMQ (ROUTER/DEALER), all in one run; prints (b)/(a) and (b)/(c) against the target 0.7 × min((a), (c)).

import ArgumentParser
import Foundation
import Protocol

struct BenchWire: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Upload throughput over TLS in ZeroMQ STREAM vs. the TLS record layer alone and vs. plain ZeroMQ."
    )

    @Option(help: "Upload size in MiB.")
    var sizeMib = 1024

    @Option(help: "Chunk size in MiB (the protocol allows at most 4).")
    var chunkMib = 4

    @Option(help: "Flow-control window: chunks in flight.")
    var window = 4

    @Option(help: "Timed repetitions of each measurement (the best is reported).")
    var repeats = 2

    @Option(help: ArgumentHelp("Run only these measurements (e.g. `b` or `ac`), for profiling; ratios need all three.", visibility: .hidden))
    var only = "abc"

    @Option(help: "Scratch directory (default: a new directory under the system temp dir).")
    var scratch: String?

    func validate() throws {
        guard sizeMib > 0 else { throw ValidationError("--size-mib must be positive.") }
        guard (1...4).contains(chunkMib) else { throw ValidationError("--chunk-mib must be 1…4 (the receiver caps chunks at 4 MiB).") }
        guard window > 0, repeats > 0 else { throw ValidationError("--window and --repeats must be positive.") }
    }

    func run() throws {
        let dir = scratch ?? NSTemporaryDirectory() + "fedmerge-bench-wire-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if scratch == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let certs = dir + "/certs"
        let ca = try CertificateAuthority.initialize(directory: certs, force: true)
        try ca.issue(name: "aggregator", server: true, force: true)
        try ca.issue(name: "agent-bench", server: false, force: true)
        let serverTLS = TLSConfiguration(directory: certs, name: "aggregator")
        let clientTLS = TLSConfiguration(directory: certs, name: "agent-bench")

        let size = sizeMib << 20, chunk = chunkMib << 20
        let source = dir + "/upload.bin"
        try writeSource(source, size: size)
        let sha = try SHA256Hasher.hashFile(source)
        let gib = Double(size) / Double(1 << 30)

        // (a) record layer alone: the same bytes in chunk-sized messages through a TLSPipe.
        let pipe = try TLSPipe(server: serverTLS, client: clientTLS, serverName: "aggregator")
        let message = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { message.deallocate() }
        for i in 0..<chunk { message[i] = UInt8(truncatingIfNeeded: i &* 31) }
        // Rounds alternate a → b → c (after one warm-up round) so that drifting load on a shared
        // machine hits all three alike; each reports its best wall time. CPU seconds (user +
        // system, all threads) per measurement move much less with other load.
        let spool = dir + "/spool"
        let bodies: [(key: String, run: () throws -> Void)] = [
            ("a", {
                var moved = 0
                while moved < size { moved += try pipe.transfer(UnsafeRawBufferPointer(message)) }
            }),
            ("b", { try WireUpload.overTLS(source: source, sha: sha, spool: spool, chunk: chunk, window: window, serverTLS: serverTLS, clientTLS: clientTLS) }),
            ("c", { try WireUpload.overPlainZeroMQ(source: source, sha: sha, spool: spool, chunk: chunk, window: window) }),
        ]
        var best: [String: Double] = [:], cpu: [String: Double] = [:]
        for round in 0...repeats {
            for (key, run) in bodies where only.contains(key) {
                let cpuBefore = BenchWire.processCPUSeconds()
                let start = DispatchTime.now().uptimeNanoseconds
                try run()
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                guard round > 0 else { continue }  // warm-up
                best[key] = min(best[key] ?? .infinity, seconds)
                cpu[key, default: 0] += (BenchWire.processCPUSeconds() - cpuBefore) / Double(repeats)
            }
        }
        let a = best["a"] ?? .nan, b = best["b"] ?? .nan, c = best["c"] ?? .nan

        let rateA = gib / a, rateB = gib / b, rateC = gib / c
        print("fedmerge bench wire — \(sizeMib) MiB, \(chunkMib) MiB chunks, window \(window), best of \(repeats); loopback, 127.0.0.1")
        print("receiver fsync is OFF for these measurements (the daemons fsync every chunk before ACK)")
        func cpuPerGiB(_ key: String) -> String { BenchSupport.format(cpu[key, default: .nan] / gib) }
        printTable(header: ["measure", "GiB/s", "CPU s/GiB"], rows: [
            ["(a) TLS 1.3 record layer in memory (encrypt + decrypt, 1 thread)", BenchSupport.format(rateA), cpuPerGiB("a")],
            ["(b) upload over TLS in ZeroMQ STREAM (ChunkSender → SecureClient → SecureServer → ChunkReceiver)", BenchSupport.format(rateB), cpuPerGiB("b")],
            ["(c) upload over plain ZeroMQ (same sender/receiver, no TLS)", BenchSupport.format(rateC), cpuPerGiB("c")],
        ])
        let target = 0.7 * min(rateA, rateC)
        print("(b)/(a) = \(BenchSupport.format(rateB / rateA))   (b)/(c) = \(BenchSupport.format(rateB / rateC))   " +
              "target (b) ≥ 0.7 × min((a), (c)) = \(BenchSupport.format(target)) GiB/s: \(rateB >= target ? "met" : "NOT met")")
        print("(b) and (c) include the receiver's SHA-256 and file writes; (a) is the record layer alone. " +
              "Machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(BenchWire.loadAverage()).")
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    }

    /// Pseudo-random contents (one random 4 MiB block, each copy stamped with its index).
    private func writeSource(_ path: String, size: Int) throws {
        let block = 4 << 20
        var bytes = [UInt8](repeating: 0, count: block)
        var rng = SystemRandomNumberGenerator()
        bytes.withUnsafeMutableBytes { raw in
            for i in stride(from: 0, to: block, by: 8) { raw.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) }
        }
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var written = 0
        while written < size {
            withUnsafeBytes(of: UInt64(written)) { stamp in for k in 0..<8 { bytes[k] = stamp[k] } }
            let n = min(block, size - written)
            handle.write(Data(bytes[0..<n]))
            written += n
        }
    }
}

/// The two timed uploads: a receiver thread and the sender on the calling thread.
enum WireUpload {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `body` on a new thread; the returned closure waits for it and rethrows its error.
    private static func spawn(_ body: @escaping @Sendable () throws -> Void) -> () throws -> Void {
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        Thread {
            do { try body() } catch { failure.set(error) }
            done.signal()
        }.start()
        return {
            done.wait()
            if let error = failure.get() { throw error }
        }
    }

    private final class FailureBox: @unchecked Sendable {
        private let lock = NSLock()
        private var error: Error?
        func set(_ e: Error) { lock.lock(); error = e; lock.unlock() }
        func get() -> Error? { lock.lock(); defer { lock.unlock() }; return error }
    }

    static func overTLS(source: String, sha: String, spool: String, chunk: Int, window: Int,
                        serverTLS: TLSConfiguration, clientTLS: TLSConfiguration) throws {
        try? FileManager.default.removeItem(atPath: spool)
        let server = try SecureServer(endpoint: "tcp://127.0.0.1:*", tls: serverTLS, allow: { $0 == "agent-bench" })
        let receiver = try ChunkReceiver(spool: spool, syncEachChunk: false)
        let join = spawn {
            defer { server.close() }
            while true {
                guard let event = try server.receive(timeout: 60) else { throw Failure(description: "server: no traffic for 60 s") }
                guard case .message(let peer, let message) = event else { continue }
                let outcome = try receiver.handle(message)
                for reply in outcome.replies { try server.send(reply, to: peer) }
                if outcome.completed != nil { break }
            }
            // Closing now could cut COMMITTED off on its way out: wait for the client to leave.
            while let event = try server.receive(timeout: 10) {
                if case .disconnected = event { return }
            }
        }
        let client = try SecureClient(endpoint: server.endpoint, tls: clientTLS, serverName: "aggregator")
        try client.connect()
        let sender = try ChunkSender(path: source, name: "upload.bin", sha256: sha, chunkSize: chunk, window: window)
        try sender.start(send: client.send)
        while !sender.isCommitted {
            guard let reply = try client.receive(timeout: 60) else { throw Failure(description: "client: no reply for 60 s") }
            try sender.handle(reply, send: client.send)
        }
        client.close()
        try join()
    }

    static func overPlainZeroMQ(source: String, sha: String, spool: String, chunk: Int, window: Int) throws {
        try? FileManager.default.removeItem(atPath: spool)
        let codec = MessageCodec()
        let router = try ZMQSocket(.router)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint()
        let receiver = try ChunkReceiver(spool: spool, syncEachChunk: false)
        let join = spawn {
            // Let the last reply leave before the socket closes (ZMQSocket's default linger is 0).
            defer { try? router.setLinger(milliseconds: 2000); router.close() }
            var finished = false
            while !finished {
                _ = try router.receiveFrames { frames, _ in
                    guard frames.count == 2 else { return }
                    let outcome = try receiver.handle(try codec.decode(Data(frames[1])))
                    for reply in outcome.replies {
                        try router.send(frames[0], more: true)
                        try router.send(codec.encode(reply))
                    }
                    finished = outcome.completed != nil
                }
            }
        }
        let dealer = try ZMQSocket(.dealer)
        try dealer.connect(endpoint)
        // One copy into the ZeroMQ message, as the TLS path's one copy out of the BIO.
        let send: (Message) throws -> Void = { message in
            let head = codec.encodeHead(of: message)
            var payload = Data()
            if case .chunk(_, let bytes) = message { payload = bytes }
            try dealer.send(count: head.count + payload.count) { buffer in
                head.copyBytes(to: buffer.bindMemory(to: UInt8.self).baseAddress!, count: head.count)
                payload.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[head.count...]).copyMemory(from: $0) }
            }
        }
        let sender = try ChunkSender(path: source, name: "upload.bin", sha256: sha, chunkSize: chunk, window: window)
        try sender.start(send: send)
        while !sender.isCommitted {
            var reply: Message?
            _ = try dealer.receiveFrames { frames, _ in reply = try codec.decode(Data(frames[0])) }
            if let reply { try sender.handle(reply, send: send) }
        }
        try join()
        dealer.close()
    }
}
