// Tests for ProgressBar and ProgressThrottle: when reports are emitted (decided by progress, with
// time thresholds set out of reach so nothing depends on the clock) and what they contain.

import Foundation
import XCTest
@testable import Console

/// Collects what a ProgressBar writes.
final class WrittenText: @unchecked Sendable {
    private let lock = NSLock()
    private var parts: [String] = []
    func append(_ text: String) { lock.lock(); parts.append(text); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return parts }
}

final class ProgressBarTests: XCTestCase {
    let never = 1e9  // seconds: a time threshold no test reaches

    func testThrottleRules() {
        let throttle = ProgressThrottle(minimumInterval: 0.1, logPercentStep: 10, logInterval: 30)
        XCTAssertTrue(throttle.redrawDue(now: 0, last: nil, completed: 1, total: 10))
        XCTAssertFalse(throttle.redrawDue(now: 0.05, last: 0, completed: 2, total: 10))
        XCTAssertTrue(throttle.redrawDue(now: 0.1, last: 0, completed: 2, total: 10))
        XCTAssertTrue(throttle.redrawDue(now: 0.01, last: 0, completed: 10, total: 10))  // the last step always shows
        XCTAssertEqual(throttle.bucket(completed: 19, total: 100), 1)
        XCTAssertEqual(throttle.bucket(completed: 20, total: 100), 2)
        XCTAssertFalse(throttle.logDue(now: 5, last: 0, lastBucket: 1, completed: 19, total: 100))
        XCTAssertTrue(throttle.logDue(now: 5, last: 0, lastBucket: 1, completed: 20, total: 100))
        XCTAssertTrue(throttle.logDue(now: 30, last: 0, lastBucket: 1, completed: 19, total: 100))
    }

    func testLogModePrintsALineEveryTenPercentAndAtFinish() {
        let out = WrittenText()
        let bar = ProgressBar(total: 100, label: "train", isTerminal: false,
                              throttle: ProgressThrottle(minimumInterval: 0.1, logPercentStep: 10, logInterval: never),
                              write: { out.append($0) })
        for step in 1...100 { bar.update(completed: step, metrics: [("loss", "\(step)")]) }
        bar.finish()
        bar.update(completed: 100)  // ignored after finish
        let lines = out.all
        XCTAssertEqual(lines.count, 11)  // at 10, 20, …, 100, then finish
        XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("train: ") && $0.hasSuffix("\n") })
        XCTAssertTrue(lines[0].hasPrefix("train: 10/100 (10%)"), lines[0])
        XCTAssertTrue(lines[0].contains("loss=10"), lines[0])
        XCTAssertTrue(lines[10].hasPrefix("train: 100/100 (100%)"), lines[10])
    }

    func testTerminalModeRedrawsOneLineAndEndsWithNewline() {
        let out = WrittenText()
        let bar = ProgressBar(total: 50, label: "eval", isTerminal: true,
                              throttle: ProgressThrottle(minimumInterval: never), write: { out.append($0) })
        for step in 1...50 { bar.update(completed: step) }
        bar.finish()
        let writes = out.all
        // First update draws; the throttle holds the rest until the last step; finish redraws and ends the line.
        XCTAssertEqual(writes.count, 4)
        XCTAssertTrue(writes[0].hasPrefix("\reval   2% |"), writes[0])
        XCTAssertTrue(writes[1].hasPrefix("\reval 100% |####################| 50/50"), writes[1])
        XCTAssertTrue(writes[0].hasSuffix("\u{1B}[K"))
        XCTAssertEqual(writes[3], "\n")
    }

    /// advance counts for its callers: 1000 single steps from concurrent threads end at exactly
    /// 1000/1000, the 50 % line comes at 500, and steps past the total are clamped.
    func testConcurrentAdvancesAddUpExactly() {
        let out = WrittenText()
        let bar = ProgressBar(total: 1000, label: "p", isTerminal: false,
                              throttle: ProgressThrottle(logPercentStep: 50, logInterval: never), write: { out.append($0) })
        DispatchQueue.concurrentPerform(iterations: 1000) { _ in bar.advance() }
        bar.advance(by: 5)
        bar.finish()
        let lines = out.all
        XCTAssertTrue(lines.first?.hasPrefix("p: 500/1000 (50%)") == true, lines.first ?? "no line")
        XCTAssertTrue(lines.last?.hasPrefix("p: 1000/1000 (100%)") == true, lines.last ?? "no line")
    }

    func testConcurrentUpdatesAreSafe() {
        let out = WrittenText()
        let bar = ProgressBar(total: 1000, label: "p", isTerminal: false,
                              throttle: ProgressThrottle(logPercentStep: 50, logInterval: never), write: { out.append($0) })
        DispatchQueue.concurrentPerform(iterations: 1000) { i in bar.update(completed: i + 1) }
        bar.finish()
        // Whatever the interleaving, each bucket (50%, 100%) is logged at most once, plus finish.
        XCTAssertLessThanOrEqual(out.all.count, 3)
        XCTAssertGreaterThanOrEqual(out.all.count, 1)
    }
}
