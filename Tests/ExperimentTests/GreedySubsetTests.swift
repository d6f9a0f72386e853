// GreedySubset: ordering by validation score and choosing the best prefix.

import Experiment
import XCTest

final class GreedySubsetTests: XCTestCase {
    func testOrderIsByValidationScoreBestFirstTiesByName() {
        let order = GreedySubset.order(validation: ["nyt": 0.61, "tweets": 0.80, "amazon": 0.72, "movies": 0.72])
        XCTAssertEqual(order, ["tweets", "amazon", "movies", "nyt"])
    }

    func testBestPrefixPicksTheHighestValidationScoreShorterOnTies() {
        XCTAssertEqual(GreedySubset.bestPrefix(prefixScores: [0.70, 0.74, 0.73, 0.71]), 2)
        XCTAssertEqual(GreedySubset.bestPrefix(prefixScores: [0.70, 0.74, 0.74]), 2)
        XCTAssertEqual(GreedySubset.bestPrefix(prefixScores: [0.60, 0.65, 0.66, 0.69]), 4)
        XCTAssertEqual(GreedySubset.bestPrefix(prefixScores: [0.9, 0.5]), 1)
    }
}
