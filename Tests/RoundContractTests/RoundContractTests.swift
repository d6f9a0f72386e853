// The contract's names as the other side reads them: WELCOME's statistic kinds travel as the
// strings older peers sent, statistic keys parse back to their owner and kind, and the kept
// head prefix follows `heads_prefix`.

import Foundation
import RoundContract
import XCTest

final class RoundContractTests: XCTestCase {
    func testWelcomeCarriesStatisticKindsAsTheirWireStringsAndListsAsLists() throws {
        let welcome = Welcome(round: 2, merge: "all", wantedStatistics: [.gram, .kfacOut], methods: ["regmean"],
                              required: ["config.json", "model.safetensors"], committed: ["config.json"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(welcome)) as? [String: Any])
        XCTAssertEqual(object["wantedStatistics"] as? [String], ["gram", "kfac_out"])
        XCTAssertEqual(object["required"] as? [String], ["config.json", "model.safetensors"])
        XCTAssertEqual(object["committed"] as? [String], ["config.json"])
        let unknown = #"{"round":1,"merge":"m","wantedStatistics":["grams"],"methods":[],"required":[],"committed":[],"phase":"collecting","merges":[]}"#
        XCTAssertThrowsError(try JSONDecoder().decode(Welcome.self, from: Data(unknown.utf8)), "an unknown statistic kind is a decoding error")
    }

    func testStatisticKeysParseBackToOwnerAndKind() {
        let linear = "bert.encoder.layer.0.attention.self.query"
        XCTAssertEqual(StatisticKey.parse(StatisticKey.gram(linear))?.owner, linear)
        XCTAssertEqual(StatisticKey.parse(StatisticKey.gram(linear))?.kind, .gram)
        XCTAssertEqual(StatisticKey.parse(StatisticKey.kfacOut(linear))?.kind, .kfacOut)
        XCTAssertEqual(StatisticKey.parse(StatisticKey.fisher(linear + ".weight"))?.owner, linear + ".weight")
        XCTAssertNil(StatisticKey.parse(linear + ".weight"))
        XCTAssertEqual(StatisticKey.gramRows(linear), linear + ".gram.num_rows")
        XCTAssertEqual(StatisticKey.gramSameAs(linear), linear + ".gram.same_as")
        XCTAssertTrue(StatisticKind.labelCounts.isPresent(tensorNames: [], metadataKeys: ["train.label_counts"]))
        XCTAssertFalse(StatisticKind.fisher.isPresent(tensorNames: [StatisticKey.gram(linear)], metadataKeys: []))
    }

    func testKeptHeadPrefixFollowsHeadsPrefix() {
        XCTAssertEqual(HeadsNaming.keptPrefix(agent: "a"), "classifier_a.")
        XCTAssertEqual(HeadsNaming.keptPrefix(agent: "b", headsPrefix: "score."), "score_b.")
        XCTAssertTrue(HeadsNaming.isAnyHead("score_b.weight", headsPrefix: "score."))
        XCTAssertFalse(HeadsNaming.isAnyHead("classifier_b.weight", headsPrefix: "score."))
    }

    func testContributionFingerprintsAreHexOrUnversioned() {
        XCTAssertTrue(ContributionFingerprint.isValid(String(repeating: "a", count: 64)))
        XCTAssertTrue(ContributionFingerprint.isValid(ContributionFingerprint.unversioned))
        XCTAssertFalse(ContributionFingerprint.isValid("../" + String(repeating: "a", count: 61)))
        XCTAssertFalse(ContributionFingerprint.isValid(String(repeating: "A", count: 64)))
    }
}
