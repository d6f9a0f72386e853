// Tests for LabeledDataset: label counts, seeded shuffling and splitting.

import XCTest
@testable import Model

final class LabeledDatasetTests: XCTestCase {
    func numbered(_ n: Int) -> LabeledDataset {
        LabeledDataset(examples: (0..<n).map { LabeledExample(text: "t\($0)", labels: [$0 % 3]) },
                       labelNames: ["a", "b", "c"], isMultiLabel: false)
    }

    func testLabelCountsCountEveryLabel() {
        XCTAssertEqual(numbered(10).labelCounts(), [4, 3, 3])  // 0,3,6,9 / 1,4,7 / 2,5,8
    }

    func testShuffleIsASeededPermutation() {
        let data = numbered(100)
        let once = data.shuffled(seed: 7), twice = data.shuffled(seed: 7), other = data.shuffled(seed: 8)
        XCTAssertEqual(once, twice)
        XCTAssertNotEqual(once.texts, other.texts)
        XCTAssertNotEqual(once.texts, data.texts)
        XCTAssertEqual(Set(once.texts), Set(data.texts))
        XCTAssertEqual(once.count, 100)
        XCTAssertEqual(once.labelCounts(), data.labelCounts())
    }

    func testSplitCutsAtRoundedCumulativeFractions() {
        let parts = numbered(7).split(fractions: [0.5, 0.25, 0.25], seed: 1)
        // Cuts at round(3.5) = 4 and round(5.25) = 5, the last part ends at 7.
        XCTAssertEqual(parts.map(\.count), [4, 1, 2])
        XCTAssertEqual(parts.flatMap(\.texts), numbered(7).shuffled(seed: 1).texts)
        XCTAssertEqual(parts[0].labelNames, ["a", "b", "c"])

        let trainTest = numbered(10).split(fractions: [0.8, 0.2], seed: 3)
        XCTAssertEqual(trainTest.map(\.count), [8, 2])
        XCTAssertTrue(Set(trainTest[0].texts).isDisjoint(with: trainTest[1].texts))
    }

    func testStratifiedSplitKeepsClassProportions() {
        // 30 examples, 10 per class; 0.8/0.2 cuts each class 8/2.
        let parts = numbered(30).stratifiedSplit(fractions: [0.8, 0.2], seed: 5)
        XCTAssertEqual(parts[0].labelCounts(), [8, 8, 8])
        XCTAssertEqual(parts[1].labelCounts(), [2, 2, 2])
        XCTAssertEqual(Set(parts[0].texts + parts[1].texts), Set(numbered(30).texts))
        XCTAssertEqual(parts.map(\.count), [24, 6])
    }
}
