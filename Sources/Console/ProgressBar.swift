// ProgressBar: a thread-safe progress report on stderr — one redrawn line on a terminal, plain log lines otherwise.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// When to emit a report, decided from the time and progress alone (no clock inside, so the
/// rules can be checked without waiting).
public struct ProgressThrottle: Sendable, Equatable {
    /// Terminal: at most one redraw per `minimumInterval` seconds (0.1 s → ≤ 10 redraws/s).
    public var minimumInterval: Double = 0.1
    /// Log: a line each time progress crosses another `logPercentStep` percent …
    public var logPercentStep: Int = 10
    /// … or `logInterval` seconds after the last line, whichever comes first.
    public var logInterval: Double = 30

    public init(minimumInterval: Double = 0.1, logPercentStep: Int = 10, logInterval: Double = 30) {
        self.minimumInterval = minimumInterval
        self.logPercentStep = logPercentStep
        self.logInterval = logInterval
    }

    /// Whether a terminal redraw is due at time `now` (seconds) after the last one at `last`.
    public func redrawDue(now: Double, last: Double?, completed: Int, total: Int) -> Bool {
        guard let last else { return true }
        return completed >= total || now - last >= minimumInterval
    }

    /// Whether a log line is due: the percent bucket (multiples of logPercentStep) moved past
    /// the last logged one, or logInterval seconds passed.
    public func logDue(now: Double, last: Double?, lastBucket: Int, completed: Int, total: Int) -> Bool {
        if bucket(completed: completed, total: total) > lastBucket { return true }
        guard let last else { return false }
        return now - last >= logInterval
    }

    /// floor(percent done / logPercentStep).
    public func bucket(completed: Int, total: Int) -> Int {
        guard total > 0, logPercentStep > 0 else { return 0 }
        return (completed * 100 / total) / logPercentStep
    }
}

public final class ProgressBar: @unchecked Sendable {
    public let total: Int
    public let label: String
    public let unit: ProgressUnit
    public let isTerminal: Bool
    public let throttle: ProgressThrottle

    // Guarded by `lock`: update() may be called from worker threads.
    private let lock = NSLock()
    private let start = ContinuousClock.now
    private let write: @Sendable (String) -> Void
    private var completed = 0
    private var metrics: [(String, String)] = []
    private var lastEmit: Double?
    private var lastBucket = 0
    private var finished = false

    /// `isTerminal` defaults to isatty(2); `write` defaults to writing stderr. Both are
    /// parameters so a caller (or a test) can direct the output.
    public init(total: Int, label: String, unit: ProgressUnit = .steps, isTerminal: Bool? = nil,
                throttle: ProgressThrottle = ProgressThrottle(), write: (@Sendable (String) -> Void)? = nil) {
        self.total = max(0, total)
        self.label = label
        self.unit = unit
        self.isTerminal = isTerminal ?? (isatty(2) == 1)
        self.throttle = throttle
        self.write = write ?? ProgressBar.writeStandardError
    }

    /// Records progress (`completed` out of `total`) and the latest metrics, and reports if due.
    public func update(completed: Int, metrics: [(String, String)] = []) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        self.completed = min(max(0, completed), total)
        self.metrics = metrics
        report()
    }

    /// Adds `count` finished steps — from any thread, so workers need no counter of their own —
    /// and reports if due.
    public func advance(by count: Int = 1) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        completed = min(max(0, completed + count), total)
        report()
    }

    /// Emits a redraw or a log line if the throttle says one is due; the caller holds `lock`.
    private func report() {
        let now = elapsed()
        if isTerminal {
            if throttle.redrawDue(now: now, last: lastEmit, completed: self.completed, total: total) {
                emitBar(now: now)
            }
        } else if throttle.logDue(now: now, last: lastEmit, lastBucket: lastBucket, completed: self.completed, total: total) {
            emitLog(now: now)
        }
    }

    /// The final report (a last redraw and a newline on a terminal; a last log line otherwise).
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        let now = elapsed()
        if isTerminal {
            emitBar(now: now)
            write("\n")
        } else {
            emitLog(now: now)
        }
    }

    private func emitBar(now: Double) {
        let line = ProgressFormat.barLine(label: label, completed: completed, total: total, elapsed: now,
                                          unit: unit, metrics: metrics, width: Self.terminalWidth() - 1)
        write("\r" + line + "\u{1B}[K")  // carriage return, line, erase the rest of the old line
        lastEmit = now
    }

    private func emitLog(now: Double) {
        write(ProgressFormat.logLine(label: label, completed: completed, total: total, elapsed: now,
                                     unit: unit, metrics: metrics) + "\n")
        lastEmit = now
        lastBucket = throttle.bucket(completed: completed, total: total)
    }

    private func elapsed() -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    private static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 10 { return Int(size.ws_col) }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns > 10 { return columns }
        return 100
    }

    private static let writeStandardError: @Sendable (String) -> Void = { text in
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            offset += n
        }
    }
}
