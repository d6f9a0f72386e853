// A process's resident memory as Linux reports it in /proc/<pid>/status: the current
// resident set (VmRSS) and its peak so far (VmHWM, "high water mark").

import Foundation

public struct ProcessMemory: Equatable, Sendable {
    /// Bytes resident now and at the peak.
    public var residentBytes: UInt64
    public var peakBytes: UInt64

    public init(residentBytes: UInt64, peakBytes: UInt64) {
        self.residentBytes = residentBytes
        self.peakBytes = peakBytes
    }

    /// Reads the fields from the text of a status file (values are "<n> kB"). Nil when either
    /// is absent or malformed (a kernel thread, or a process that has already exited).
    public static func parse(status text: String) -> ProcessMemory? {
        var fields: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0] == "VmRSS" || parts[0] == "VmHWM" else { continue }
            let words = parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count == 2, words[1] == "kB", let kib = UInt64(words[0]) else { return nil }
            fields[String(parts[0])] = kib * 1024
        }
        guard let rss = fields["VmRSS"], let hwm = fields["VmHWM"] else { return nil }
        return ProcessMemory(residentBytes: rss, peakBytes: hwm)
    }

    /// /proc/`pid`/status now; nil once the process is gone.
    public static func of(pid: Int32) -> ProcessMemory? {
        (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)).flatMap { parse(status: $0) }
    }

    /// This process's own.
    public static var current: ProcessMemory? {
        (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)).flatMap { parse(status: $0) }
    }
}
