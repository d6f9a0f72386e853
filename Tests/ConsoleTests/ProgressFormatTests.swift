// Tests for ProgressFormat: durations, ETA, rates, amounts and the two report lines, values worked out by hand.

import XCTest
@testable import Console

final class ProgressFormatTests: XCTestCase {
    func testDurationUsesMinutesThenHours() {
        XCTAssertEqual(ProgressFormat.duration(5), "0:05")
        XCTAssertEqual(ProgressFormat.duration(65.4), "1:05")
        XCTAssertEqual(ProgressFormat.duration(59.6), "1:00")
        XCTAssertEqual(ProgressFormat.duration(3723), "1:02:03")
        XCTAssertEqual(ProgressFormat.duration(nil), "--:--")
        XCTAssertEqual(ProgressFormat.duration(.infinity), "--:--")
        XCTAssertEqual(ProgressFormat.duration(-1), "--:--")
    }

    func testEtaExtrapolatesTheAverageRate() {
        // 25 of 100 in 10 s → 75 more at 2.5/s = 30 s.
        XCTAssertEqual(ProgressFormat.eta(completed: 25, total: 100, elapsed: 10), 30)
        XCTAssertEqual(ProgressFormat.eta(completed: 100, total: 100, elapsed: 10), 0)
        XCTAssertNil(ProgressFormat.eta(completed: 0, total: 100, elapsed: 10))
    }

    func testRateInStepsAndBytes() {
        XCTAssertEqual(ProgressFormat.rate(12.34, unit: .steps), "12.3 it/s")
        XCTAssertEqual(ProgressFormat.rate(0.25, unit: .steps), "4.00 s/it")
        XCTAssertEqual(ProgressFormat.rate(45_600_000, unit: .bytes), "45.6 MB/s")
        XCTAssertEqual(ProgressFormat.rate(1500, unit: .bytes), "1.50 kB/s")
        XCTAssertEqual(ProgressFormat.rate(0, unit: .steps), "-- it/s")
    }

    func testAmountsOfBytesUseDecimalPrefixes() {
        XCTAssertEqual(ProgressFormat.amount(512, unit: .bytes), "512 B")
        XCTAssertEqual(ProgressFormat.amount(1_230_000_000, unit: .bytes), "1.23 GB")
        XCTAssertEqual(ProgressFormat.amount(90_868_376, unit: .bytes), "90.9 MB")
        XCTAssertEqual(ProgressFormat.amount(37, unit: .steps), "37")
    }

    func testFixedDecimals() {
        XCTAssertEqual(ProgressFormat.fixed(3.14159, 2), "3.14")
        XCTAssertEqual(ProgressFormat.fixed(9.996, 2), "10.00")
        XCTAssertEqual(ProgressFormat.fixed(0.07, 2), "0.07")
        XCTAssertEqual(ProgressFormat.fixed(-1.5, 1), "-1.5")
        XCTAssertEqual(ProgressFormat.fixed(2.4, 0), "2")
    }

    func testBarLineShowsBarCountsRateEtaAndMetrics() {
        // 37/100 after 3.7 s: 10.0 it/s; 63 left → 6.3 s → "0:06"; 7 of 20 cells filled (7.4 rounded down).
        let line = ProgressFormat.barLine(label: "train", completed: 37, total: 100, elapsed: 3.7, unit: .steps,
                                          metrics: [("loss", "0.431")])
        XCTAssertEqual(line, "train  37% |#######-------------| 37/100  10.0 it/s  ETA 0:06  loss=0.431")
    }

    func testBarLineIsCutToTheTerminalWidth() {
        let line = ProgressFormat.barLine(label: "train", completed: 1, total: 2, elapsed: 1, unit: .steps,
                                          metrics: [], width: 20)
        XCTAssertEqual(line.count, 20)
        XCTAssertTrue(line.hasSuffix("…"))
    }

    func testBytesBarLine() {
        // 45.2 MB of 90.4 MB in 2 s: 22.6 MB/s, 2 s left.
        let line = ProgressFormat.barLine(label: "upload", completed: 45_200_000, total: 90_400_000, elapsed: 2,
                                          unit: .bytes, metrics: [])
        XCTAssertEqual(line, "upload  50% |##########----------| 45.2 MB/90.4 MB  22.6 MB/s  ETA 0:02")
    }

    func testLogLine() {
        let line = ProgressFormat.logLine(label: "train", completed: 37, total: 100, elapsed: 3.7, unit: .steps,
                                          metrics: [("loss", "0.431")])
        XCTAssertEqual(line, "train: 37/100 (37%), 10.0 it/s, elapsed 0:04, ETA 0:06, loss=0.431")
        let done = ProgressFormat.logLine(label: "train", completed: 100, total: 100, elapsed: 10, unit: .steps, metrics: [])
        XCTAssertEqual(done, "train: 100/100 (100%), 10.0 it/s, elapsed 0:10")
    }
}
