// Tests for LinearWarmupDecay against its closed form, values worked out by hand.

import XCTest
@testable import Model

final class LinearWarmupDecayTests: XCTestCase {
    func testWarmupThenDecayToZero() {
        // peak 1, W = 2, N = 6: s/2 for s < 2, then (6 − s)/4 (transformers' convention).
        let schedule = LinearWarmupDecay(peak: 1, warmupSteps: 2, totalSteps: 6)
        XCTAssertEqual((0...6).map { schedule.rate(at: $0) }, [0, 0.5, 1, 0.75, 0.5, 0.25, 0])
        XCTAssertEqual(schedule.rate(at: -1), 0)
        XCTAssertEqual(schedule.rate(at: 100), 0)
    }

    func testNoWarmupStartsAtPeak() {
        // peak 2, W = 0, N = 4: 2·(4 − s)/4.
        let schedule = LinearWarmupDecay(peak: 2, warmupSteps: 0, totalSteps: 4)
        XCTAssertEqual((0..<4).map { schedule.rate(at: $0) }, [2, 1.5, 1, 0.5])
    }

    func testLongScheduleFollowsClosedFormAtSampledSteps() {
        let schedule = LinearWarmupDecay(peak: 5e-5, warmupSteps: 100, totalSteps: 1000)
        XCTAssertEqual(schedule.rate(at: 50), 5e-5 * 50 / 100, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(at: 99), 5e-5 * 99 / 100, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(at: 100), 5e-5, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(at: 550), 5e-5 * 450 / 900, accuracy: 1e-12)
        XCTAssertEqual(schedule.rate(at: 999), 5e-5 / 900, accuracy: 1e-12)
    }

    func testRunShorterThanWarmupOnlyWarmsUp() {
        // W = 4 > N = 3: s/4 for every step, then 0.
        let schedule = LinearWarmupDecay(peak: 1, warmupSteps: 4, totalSteps: 3)
        XCTAssertEqual((0...3).map { schedule.rate(at: $0) }, [0, 0.25, 0.5, 0])
    }
}
