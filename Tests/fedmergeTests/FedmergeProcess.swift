// Test support: the built `fedmerge` executable run as a child process, its exit status,
// stdout and stderr collected, and its peak resident memory read from /proc while it runs.

import Foundation
import XCTest

struct FedmergeRun {
    var status: Int32
    var stdout: String
    var stderr: String
    /// Largest VmHWM (peak resident set, bytes) read from /proc/<pid>/status while it ran.
    var peakResidentBytes: Int
}

enum FedmergeProcess {
    /// The fedmerge binary built beside this test bundle (swift build --build-tests builds it).
    static func executable() throws -> String {
        var dir = URL(fileURLWithPath: CommandLine.arguments.first { $0.hasSuffix(".xctest") } ?? CommandLine.arguments[0])
        for _ in 0..<3 {
            dir.deleteLastPathComponent()
            let candidate = dir.appendingPathComponent("fedmerge").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw XCTSkip("fedmerge executable not found next to the test bundle; run `swift build --build-tests` first")
    }

    /// Runs fedmerge with `arguments` (stdin from `stdin` when given) to completion.
    static func run(_ arguments: [String], stdin: String? = nil) throws -> FedmergeRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try executable())
        p.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        // Drain both pipes on their own threads so a large output never blocks the child.
        let drained = [Drained(), Drained()]
        let group = DispatchGroup()
        for (handle, sink) in zip([out.fileHandleForReading, err.fileHandleForReading], drained) {
            group.enter()
            Thread.detachNewThread {
                sink.data = handle.readDataToEndOfFile()
                group.leave()
            }
        }
        try p.run()
        if let stdin {
            try input.fileHandleForWriting.write(contentsOf: Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        var peak = 0
        while p.isRunning {
            if let hwm = peakResident(pid: p.processIdentifier) { peak = max(peak, hwm) }
            usleep(2_000)
        }
        p.waitUntilExit()
        group.wait()
        return FedmergeRun(status: p.terminationStatus, stdout: String(decoding: drained[0].data, as: UTF8.self),
                           stderr: String(decoding: drained[1].data, as: UTF8.self), peakResidentBytes: peak)
    }

    /// VmHWM of a live process, in bytes (nil once it has exited).
    static func peakResident(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kB = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
        return kB * 1024
    }
}

/// One pipe's bytes, written by its reader thread before the group it leaves is waited on.
private final class Drained: @unchecked Sendable {
    var data = Data()
}
