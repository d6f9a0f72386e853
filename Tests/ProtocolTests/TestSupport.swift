// Shared fixtures for the Protocol tests: a federation of real certificates in a temp
// directory, a server loop on its own thread that spools uploads like the aggregator will,
// and a client-side upload driver. Nothing here is mocked: real OpenSSL, real libzmq sockets.

import Foundation
import XCTest
@testable import Protocol

/// Base class of the Protocol tests: removes the temporary directories a test made.
class ProtocolTestCase: XCTestCase {
    override func tearDown() {
        TestFiles.removeCreated()
        super.tearDown()
    }
}

enum TestFiles {
    /// Directories made by `temporaryDirectory` since the last `removeCreated`.
    private static let created = Locked<[String]>([])

    static func temporaryDirectory(_ label: String) -> String {
        let path = NSTemporaryDirectory() + "fedmerge-wiretest-\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        created.write { $0.append(path) }
        return path
    }

    static func removeCreated() {
        let paths = created.write { paths in
            defer { paths.removeAll() }
            return paths
        }
        for path in paths { try? FileManager.default.removeItem(atPath: path) }
    }

    /// A file of `size` pseudo-random bytes (seeded, so failures reproduce).
    static func randomFile(at path: String, size: Int, seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let block = 1 << 20
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var remaining = size
        var buffer = [UInt64](repeating: 0, count: block / 8)
        while remaining > 0 {
            for i in buffer.indices { buffer[i] = rng.next() }
            let n = min(block, remaining)
            buffer.withUnsafeBytes { handle.write(Data($0.prefix(n))) }
            remaining -= n
        }
    }

    /// SHA-256 by the openssl CLI: a digest computed outside our code.
    static func independentSHA256(_ path: String) throws -> String {
        let output = try run("/usr/bin/openssl", ["dgst", "-sha256", "-r", path]).output
        return String(output.split(separator: " ").first ?? "")
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// A federation CA with an aggregator certificate and named agent certificates.
struct TestFederation {
    let directory: String
    let authority: CertificateAuthority

    init() throws {
        directory = TestFiles.temporaryDirectory("certs")
        authority = try CertificateAuthority.initialize(directory: directory)
        try authority.issue(name: "aggregator", server: true)
    }

    var serverTLS: TLSConfiguration { TLSConfiguration(directory: directory, name: "aggregator") }

    /// TLS files for an agent named `name` (issued on first use).
    func agentTLS(_ name: String) throws -> TLSConfiguration {
        if !FileManager.default.fileExists(atPath: directory + "/\(name).pem") {
            try authority.issue(name: name, server: false)
        }
        return TLSConfiguration(directory: directory, name: name)
    }
}

/// Thread-safe box for values a background loop shares with the test.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func read<T>(_ body: (Value) -> T) -> T { lock.lock(); defer { lock.unlock() }; return body(value) }
    func write<T>(_ body: (inout Value) -> T) -> T { lock.lock(); defer { lock.unlock() }; return body(&value) }
}

/// A SecureServer on its own thread that does what the aggregator will: one ChunkReceiver
/// per certificate name, spooling into `spool/<name>/`, replies sent back, events recorded.
final class ServerHarness: @unchecked Sendable {
    let server: SecureServer
    let spool: String
    let syncEachChunk: Bool
    /// Every event, except CHUNK messages (kept out so a 100 MiB upload does not sit in memory).
    let events = Locked<[ServerEvent]>([])
    let completed = Locked<[ChunkReceiver.CompletedFile]>([])
    let transferErrors = Locked<[TransferError]>([])
    /// The server's admitted peers, copied after every event (the server itself is the loop thread's).
    let connectedNames = Locked<[PeerID: String]>([:])
    private let stopFlag = Locked(false)
    private let finished = DispatchSemaphore(value: 0)

    init(tls: TLSConfiguration, allow: @escaping @Sendable (String) -> Bool, limits: MessageLimits = .standard,
         heartbeat: HeartbeatPolicy = .standard, syncEachChunk: Bool = true, spool: String? = nil, maxPendingHandshakes: Int = 64) throws {
        server = try SecureServer(endpoint: "tcp://127.0.0.1:*", tls: tls, allow: allow, limits: limits, heartbeat: heartbeat,
                                  maxPendingHandshakes: maxPendingHandshakes)
        self.spool = spool ?? TestFiles.temporaryDirectory("spool")
        self.syncEachChunk = syncEachChunk
        let thread = Thread { [self] in loop() }
        thread.start()
    }

    var endpoint: String { server.endpoint }

    func stop() {
        stopFlag.write { $0 = true }
        finished.wait()
    }

    private func loop() {
        var receivers: [String: ChunkReceiver] = [:]
        var names: [PeerID: String] = [:]
        while !stopFlag.read({ $0 }) {
            let event: ServerEvent?
            do { event = try server.receive(timeout: 0.05) } catch {
                XCTFail("server receive threw \(error)")
                break
            }
            guard let event else { continue }
            let peersNow = server.connectedPeers
            connectedNames.write { $0 = peersNow }
            switch event {
            case .connected(let peer, let name):
                names[peer] = name
                if receivers[name] == nil {
                    receivers[name] = try? ChunkReceiver(spool: spool + "/" + name, syncEachChunk: syncEachChunk)
                }
                events.write { $0.append(event) }
            case .message(let peer, let message):
                if message.type != .chunk { events.write { $0.append(event) } }
                guard let name = names[peer], let receiver = receivers[name] else { continue }
                if case .hello(let hello) = message {
                    try? server.send(.welcome(Welcome(round: hello.round ?? 0, wantedStatistics: [.gram], methods: ["regmean"])), to: peer)
                    continue
                }
                do {
                    let outcome = try receiver.handle(message)
                    for reply in outcome.replies { try? server.send(reply, to: peer) }
                    if let file = outcome.completed { completed.write { $0.append(file) } }
                } catch let error as TransferError {
                    transferErrors.write { $0.append(error) }
                    try? server.send(error.report, to: peer)
                } catch {
                    XCTFail("receiver threw a non-transfer error \(error)")
                }
            case .disconnected(let peer, _):
                names[peer] = nil
                events.write { $0.append(event) }
            case .refused:
                events.write { $0.append(event) }
            }
        }
        server.close()
        finished.signal()
    }

    /// Polls until `predicate` holds over the recorded events (or `timeout` seconds pass).
    func waitForEvents(timeout: Double = 20, _ predicate: ([ServerEvent]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if events.read(predicate) { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return events.read(predicate)
    }

    func refusals() -> [LinkFailure] {
        events.read { $0.compactMap { if case .refused(_, let failure) = $0 { failure } else { nil } } }
    }

    func disconnections() -> [LinkFailure] {
        events.read { $0.compactMap { if case .disconnected(_, let failure) = $0 { failure } else { nil } } }
    }
}

/// What the client side saw during an upload, for assertions independent of ChunkSender's state.
struct UploadTrace {
    var resumeOffsets: [UInt64] = []
    var chunkBytesSent: UInt64 = 0
    var highestAck: UInt64 = 0
    /// Max over time of (bytes sent − highest ACK) in this link: the flow-control window in use.
    var maxInFlight: UInt64 = 0
    var committed = false
}

enum UploadError: Error { case timedOut, peerError(String) }

/// Drives `sender` over `client` until COMMITTED, or until `stopAfterChunkBytes` chunk bytes
/// were sent on this link (then returns with `committed` false, the link still open).
@discardableResult
func upload(_ sender: ChunkSender, over client: SecureClient, stopAfterChunkBytes: UInt64? = nil,
            afterChunk: ((UInt64) -> Void)? = nil) throws -> UploadTrace {
    var trace = UploadTrace()
    var linkBase: UInt64 = 0   // offset this link started sending from
    struct Stop: Error {}
    let send: (Message) throws -> Void = { message in
        try client.send(message)
        if case .chunk(let chunk, let payload) = message {
            trace.chunkBytesSent += UInt64(payload.count)
            let sentEnd = chunk.offset + UInt64(payload.count)
            trace.maxInFlight = max(trace.maxInFlight, sentEnd - max(trace.highestAck, linkBase))
            afterChunk?(sentEnd)
            if let limit = stopAfterChunkBytes, trace.chunkBytesSent >= limit { throw Stop() }
        }
    }
    do {
        try sender.start(send: send)
        while !sender.isCommitted {
            guard let message = try client.receive(timeout: 60) else { throw UploadError.timedOut }
            switch message {
            case .resume(let resume):
                trace.resumeOffsets.append(resume.offset)
                linkBase = resume.offset
            case .ack(let ack):
                trace.highestAck = max(trace.highestAck, ack.durableOffset)
            case .error(let report):
                throw UploadError.peerError(report.message)
            default: break
            }
            try sender.handle(message, send: send)
        }
        trace.committed = true
    } catch is Stop {
        trace.committed = false
    }
    return trace
}

/// A plain TCP connection by POSIX sockets: a peer that owes nothing to our code or libzmq.
final class RawTCPPeer: @unchecked Sendable {
    let fd: Int32

    /// Connects to a `tcp://127.0.0.1:PORT` endpoint.
    init(endpoint: String) throws {
        let port = UInt16(endpoint.split(separator: ":").last.flatMap { Int($0) } ?? 0)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { Foundation.close(fd); throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED) }
    }

    deinit { Foundation.close(fd) }

    func send(_ bytes: Data) {
        bytes.withUnsafeBytes { raw in _ = Foundation.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything the other side sends until it closes the connection (nil if it has not
    /// closed within `timeout` seconds).
    func readUntilClosed(timeout: Double) -> Data? {
        var received = Data()
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return received }
            received.append(contentsOf: buffer[0..<n])
        }
        return nil
    }
}

/// A genuine TLS 1.3 ClientHello (fresh randomness each call), as a flooding peer would send.
func clientHelloBytes(federation: TestFederation) throws -> Data {
    let session = try TLSSession(context: TLSContext(try federation.agentTLS("agent-flood"), role: .client), serverName: "aggregator")
    _ = try session.advanceHandshake()
    guard let output = session.takeOutput() else { return Data() }
    defer { BufferPool.shared.recycle(output.buffer, capacity: output.capacity) }
    return Data(bytes: output.buffer, count: output.count)
}
