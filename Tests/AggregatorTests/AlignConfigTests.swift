// The aggregator's `align:` section: admission of another base model only when it is set
// (pure transition), and the named config errors — a reference off the allow-list, a missing
// data file, an unknown choice, a secure merge, a subset without the reference, a method that
// needs the base model — in the aggregator config and in merge files alike; and a merge whose
// snapshot lacks the reference failing with a reason that names it.

@testable import Aggregator
import Foundation
import Logging
import Protocol
import XCTest

final class AlignConfigTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "align-config-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory + "/merges", withIntermediateDirectories: true)
        try "one public sentence\n".write(toFile: directory + "/public.txt", atomically: true, encoding: .utf8)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    /// Loads an aggregator config with `align` and `round` sections as given.
    func load(align: String, round: String = "{id: 1, subset: [a, b], methods: [{merge_method: regmean}]}") throws -> AggregatorConfig {
        let path = directory + "/aggregator.yaml"
        try """
        listen: tcp://127.0.0.1:7070
        tls: {ca: ca.pem, cert: agg.pem, key: agg.key}
        allow: [a, b]
        spool: spool
        output: output
        base_model: base
        merges: merges
        round: \(round)
        align: \(align)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return try AggregatorConfig.load(file: path)
    }

    func assertConfigError(_ body: @autoclosure () throws -> Any, key: String, mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("'\(key)'") && text.contains(mentions), text, file: file, line: line)
        }
    }

    func testAlignIsReadWithDefaultsAndBadValuesAreNamed() throws {
        let config = try load(align: "{reference: a, data: public.txt, max_texts: 50}")
        let align = try XCTUnwrap(config.align)
        XCTAssertEqual(align.reference, "a")
        XCTAssertEqual(align.data, directory + "/public.txt")
        XCTAssertEqual(align.attention, .headPerm)
        XCTAssertEqual(align.residual, .all)
        XCTAssertEqual(align.feedForward, .match)
        XCTAssertEqual(align.maxTexts, 50)
        XCTAssertEqual(align.maxLength, 128)
        XCTAssertNil(try load(align: "null").align)

        assertConfigError(try load(align: "{reference: mallory, data: public.txt}"), key: "align.reference", mentions: "allow")
        assertConfigError(try load(align: "{reference: a, data: missing.txt}"), key: "align.data", mentions: "readable text file")
        assertConfigError(try load(align: "{reference: a, data: public.txt, attention: sideways}"), key: "align.attention", mentions: "head_perm")
        assertConfigError(try load(align: "{reference: a, data: public.txt, residual: all, colour: red}"), key: "align.colour", mentions: "reference")
        assertConfigError(try load(align: "{reference: a, data: public.txt}", round: "{id: 1, subset: [a, b], secure: true, methods: [{merge_method: regmean}]}"),
                          key: "round.secure", mentions: "align")
        assertConfigError(try load(align: "{reference: a, data: public.txt}", round: "{id: 1, subset: [b], methods: [{merge_method: regmean}]}"),
                          key: "round.subset", mentions: "alignment reference 'a'")
        assertConfigError(try load(align: "{reference: a, data: public.txt}", round: "{id: 1, subset: [a, b], methods: [{merge_method: task_arithmetic}]}"),
                          key: "round.methods[0].merge_method", mentions: "base model")
    }

    func testMergeFilesMustFitTheAggregatorsAlign() throws {
        let files = MergeFiles(directory: directory + "/merges", inline: nil, allow: ["a", "b"], alignReference: "a")
        try "subset: [a, b]\nsecure: true\nmethods: [{merge_method: regmean}]\n".write(toFile: directory + "/merges/masked.yaml", atomically: true, encoding: .utf8)
        try "subset: [b]\nmethods: [{merge_method: average}]\n".write(toFile: directory + "/merges/alone.yaml", atomically: true, encoding: .utf8)
        try "subset: [a, b]\nmethods: [{merge_method: fisher}]\n".write(toFile: directory + "/merges/fine.yaml", atomically: true, encoding: .utf8)
        let read = files.read(knownIDs: [:], previous: [])
        XCTAssertEqual(read.definitions.map(\.name), ["fine"])
        XCTAssertEqual(read.errors.count, 2, "\(read.errors)")
        XCTAssertTrue(read.errors.contains { $0.contains("masked.yaml") && $0.contains("'secure'") && $0.contains("align") }, "\(read.errors)")
        XCTAssertTrue(read.errors.contains { $0.contains("alone.yaml") && $0.contains("'subset'") && $0.contains("reference 'a'") }, "\(read.errors)")
        // The same files without `align` are all merges.
        XCTAssertEqual(MergeFiles(directory: directory + "/merges", inline: nil, allow: ["a", "b"]).read(knownIDs: [:], previous: []).errors, [])
    }

    func testAMergeWhoseSnapshotLacksTheReferenceFailsNamingIt() throws {
        // A quorum at the deadline may leave the reference out: the merge fails, naming it.
        let align = try XCTUnwrap(try load(align: "{reference: a, data: public.txt}").align)
        XCTAssertThrowsError(try align.alignedInputs(merge: "m", members: [(agent: "b", directory: directory + "/b"), (agent: "c", directory: directory + "/c")],
                                                     baseModel: directory + "/base", scratch: directory + "/scratch", reports: directory,
                                                     logger: Logger(label: "test"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("merge m") && text.contains("reference 'a'") && text.contains("b, c"), text)
        }
    }
}
