// FleetTable: the fleet benchmark's Markdown table (one row per K, methods as columns, a
// skipped method marked and explained) and its JSON, which round-trips.

import Experiment
import Foundation
import XCTest

final class FleetTableTests: XCTestCase {
    private var table: FleetTable {
        FleetTable(command: "fedmerge bench fleet --ks 2,64", revision: "abc1234", date: "2026-11-30T09:00:00Z", notes: ["2 cores"],
                   methods: ["regmean", "mats"],
                   rows: [FleetRow(agents: 2, uploadSeconds: 3.04, mergeSeconds: ["regmean": 1.234, "mats": 20.5], checkAndMergeSeconds: 30.26,
                                   distributionSeconds: 4.55, peakBytesAfterUploads: 300 << 20, peakBytes: 1200 << 20, spoolBytes: 500 << 20,
                                   uploadBytesPerAgent: 250 << 20),
                          FleetRow(agents: 64, uploadSeconds: 120, mergeSeconds: ["regmean": 30], checkAndMergeSeconds: 200,
                                   distributionSeconds: 60, peakBytesAfterUploads: 310 << 20, peakBytes: 700 << 20, spoolBytes: 16_000 << 20,
                                   uploadBytesPerAgent: 250 << 20, skipped: ["mats": "K > 4"])])
    }

    func testMarkdownHasOneRowPerKAndMarksSkippedMethods() {
        let lines = table.markdown.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("`fedmerge bench fleet --ks 2,64` at abc1234, 2026-11-30T09:00:00Z."))
        XCTAssertTrue(lines.contains("| K | admission+upload s | regmean merge s | mats merge s | checks+merges s | distribute s | agg. peak MiB (uploads / all) | spool MiB | upload MiB/agent |"))
        XCTAssertTrue(lines.contains("| 2 | 3.0 | 1.23 | 20.50 | 30.3 | 4.5 | 300 / 1200 | 500 | 250 |"), table.markdown)
        XCTAssertTrue(lines.contains("| 64 | 120.0 | 30.00 | — | 200.0 | 60.0 | 310 / 700 | 16000 | 250 |"), table.markdown)
        XCTAssertTrue(lines.contains("- K = 64: mats not run: K > 4"))
    }

    func testJSONRoundTripsWithSnakeCaseKeys() throws {
        let data = try table.json()
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let first = try XCTUnwrap((object["rows"] as? [[String: Any]])?.first)
        XCTAssertEqual(first["peak_bytes"] as? Int, 1200 << 20)
        XCTAssertEqual((first["merge_seconds"] as? [String: Double])?["mats"], 20.5)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        XCTAssertEqual(try decoder.decode(FleetTable.self, from: data), table)
    }
}
