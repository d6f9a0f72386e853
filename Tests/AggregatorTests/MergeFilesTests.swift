// Merge files read from a real directory: ids, the inline merge, and bad input — an unknown
// agent, two files with one name, a clashing id, a bad edit — each a named error that loses
// nothing already defined.

@testable import Aggregator
import Foundation
import XCTest

final class MergeFilesTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "merge-files-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func write(_ name: String, _ yaml: String) throws { try yaml.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8) }

    func testFilesBecomeMergesWithStableIdsAndBadFilesAreNamedWithoutLosingTheirMerge() throws {
        try write("all.yaml", "subset: [a, b, c]\nmethods: [{merge_method: regmean}, {merge_method: average}]\n")
        try write("ab.yaml", "name: pair\nid: 7\nsubset: [a, b]\nmethods: [{merge_method: fisher}]\nmin_agents: 1\n")
        try write("notes.txt", "not a merge file")
        let files = MergeFiles(directory: directory, inline: nil, allow: ["a", "b", "c"])
        let first = files.read(knownIDs: ["all": 3], previous: [])
        XCTAssertEqual(first.errors, [])
        XCTAssertEqual(Set(first.definitions.map(\.name)), ["all", "pair"], "one merge per YAML file; other files are ignored")
        let byName = Dictionary(uniqueKeysWithValues: first.definitions.map { ($0.name, $0) })
        XCTAssertEqual(byName["all"]?.id, 3, "a name merged before keeps its id")
        XCTAssertEqual(byName["pair"]?.id, 7)
        XCTAssertEqual(byName["pair"]?.kinds, [.fisher])
        XCTAssertEqual(byName["all"]?.kinds, [.gram])

        // A bad edit (an agent not on allow) is an error naming the file and the agent; the merge stays as it was.
        try write("all.yaml", "subset: [a, b, mallory]\nmethods: [{merge_method: regmean}]\n")
        let edited = files.read(knownIDs: [:], previous: first.definitions)
        XCTAssertEqual(edited.errors.count, 1)
        XCTAssertTrue(edited.errors[0].contains("all.yaml") && edited.errors[0].contains("mallory") && edited.errors[0].contains("unknown agent"), edited.errors[0])
        XCTAssertEqual(edited.definitions.first { $0.name == "all" }, byName["all"], "the previous definition stays in force")

        // Two files, one name: the file that defined it keeps it, the other is named and ignored.
        try write("all.yaml", "subset: [a, b, c]\nmethods: [{merge_method: regmean}, {merge_method: average}]\n")
        try write("zz-copy.yaml", "name: pair\nsubset: [b, c]\nmethods: [{merge_method: average}]\n")
        let twice = files.read(knownIDs: [:], previous: first.definitions)
        XCTAssertEqual(twice.definitions.filter { $0.name == "pair" }.map(\.subset), [["a", "b"]])
        XCTAssertEqual(twice.errors.count, 1)
        XCTAssertTrue(twice.errors[0].contains("zz-copy.yaml") && twice.errors[0].contains("'pair' is already defined by") && twice.errors[0].contains("ab.yaml"), twice.errors[0])

        // Two merges, one id.
        try FileManager.default.removeItem(atPath: directory + "/zz-copy.yaml")
        try write("other.yaml", "id: 7\nsubset: [c]\nmethods: [{merge_method: average}]\n")
        let clash = files.read(knownIDs: [:], previous: [])
        XCTAssertTrue(clash.errors.contains { $0.contains("other.yaml") && $0.contains("'id' = 7") }, "\(clash.errors)")
    }

    func testAMethodLabelledLikeAnAgentOrAReservedNameIsRefused() throws {
        let files = MergeFiles(directory: directory, inline: nil, allow: ["a", "b"])
        try write("m.yaml", "subset: [a, b]\nmethods: [{merge_method: average, name: a}]\n")
        XCTAssertTrue(files.read(knownIDs: [:], previous: []).errors.first?.contains("agent's name") ?? false)
        try write("m.yaml", "subset: [a, b]\nmethods: [{merge_method: average, name: merge.json}]\n")
        XCTAssertTrue(files.read(knownIDs: [:], previous: []).errors.first?.contains("merge.json") ?? false)
        try write("m.yaml", "subset: [a, b]\nmethods: [{merge_method: regmeen}]\n")
        let unknown = files.read(knownIDs: [:], previous: []).errors.first ?? ""
        XCTAssertTrue(unknown.contains("m.yaml") && unknown.contains("merge_method") && unknown.contains("regmean"), unknown)
    }

    func testSecureMergesAdmitOnlyMethodsOfSumsWithSharedHeads() throws {
        let files = MergeFiles(directory: directory, inline: nil, allow: ["a", "b"])
        for method in ["ties", "task_arithmetic", "mats"] {
            try write("s.yaml", "subset: [a, b]\nsecure: true\nmethods: [{merge_method: regmean}, {merge_method: \(method)}]\n")
            let error = files.read(knownIDs: [:], previous: []).errors.first ?? ""
            XCTAssertTrue(error.contains("s.yaml") && error.contains("methods[1].merge_method") && error.contains("'\(method)'")
                          && error.contains("average, fisher, regmean"), error)
        }
        try write("s.yaml", "subset: [a, b]\nsecure: true\nmethods: [{merge_method: regmean}, {merge_method: fisher}, {merge_method: average}]\n")
        let read = files.read(knownIDs: [:], previous: [])
        XCTAssertEqual(read.errors, [])
        XCTAssertEqual(read.definitions.first?.secure, true)
        // heads: keep is accepted: each member's head travels in the clear beside its masked sums.
        try write("s.yaml", "subset: [a, b]\nsecure: true\nheads: keep\nmethods: [{merge_method: average}, {merge_method: regmean}, {merge_method: fisher}]\n")
        let keep = files.read(knownIDs: [:], previous: [])
        XCTAssertEqual(keep.errors, [])
        XCTAssertEqual(keep.definitions.first?.secure, true)
        XCTAssertEqual(keep.definitions.first?.methods.map { $0.choice.parameters.string("heads") }, ["keep", "keep", "keep"])
        // secure: false is the clear merge as before.
        try write("s.yaml", "subset: [a, b]\nsecure: false\nmethods: [{merge_method: ties}]\n")
        XCTAssertEqual(files.read(knownIDs: [:], previous: []).errors, [])
    }

    func testAMatsKfacMergeOverItsMaxModelsIsRefusedWhenTheFileIsRead() throws {
        let files = MergeFiles(directory: directory, inline: nil, allow: ["a", "b", "c"])
        try write("m.yaml", "subset: [a, b, c]\nmethods: [{merge_method: mats, parameters: {objective: kfac, max_models: 2}}]\n")
        let refused = files.read(knownIDs: [:], previous: [])
        XCTAssertEqual(refused.definitions, [])
        let error = refused.errors.first ?? ""
        XCTAssertTrue(error.contains("m.yaml") && error.contains("max_models") && error.contains("3 agents"), error)
        // Within the bound, or with an objective that folds into sums, the merge is defined.
        try write("m.yaml", "subset: [a, b]\nmethods: [{merge_method: mats, parameters: {objective: kfac, max_models: 2}}]\n")
        XCTAssertEqual(files.read(knownIDs: [:], previous: []).errors, [])
        try write("m.yaml", "subset: [a, b, c]\nmethods: [{merge_method: mats, parameters: {objective: regmean, max_models: 2}}]\n")
        XCTAssertEqual(files.read(knownIDs: [:], previous: []).errors, [])
    }
}
