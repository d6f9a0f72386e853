// MergedDownload.select: the agent picks its own head out of a merged file whose heads were
// kept per agent, under the heads prefix MERGED announces (HeadsNaming), and drops the others.

@testable import Agent
import Foundation
import LinAlg
import SafeTensors
import XCTest

final class MergedDownloadTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "merged-download-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    private func file(_ name: String, _ tensors: [(String, [Int])]) throws -> SafeTensorsFile {
        let path = directory + "/" + name
        try SafeTensorsWriter.write(tensors: tensors.map { ($0.0, Tensor<Float>(shape: $0.1, repeating: 1)) }, to: path)
        return try SafeTensorsFile(path: path)
    }

    /// A method with `heads_prefix: "score."` keeps `score_a.` / `score_b.`: agent a gets
    /// `score_a.*` saved as `score.*`; b's head is dropped. (The old code looked for
    /// `classifier_a.` only and refused this file: "tensor 'score_a.weight' … not have".)
    func testOwnHeadUnderAnnouncedPrefixIsSelected() throws {
        let own = try file("own.safetensors", [("encoder.w", [2, 2]), ("score.weight", [3, 2]), ("score.bias", [3])])
        let merged = try file("merged.safetensors", [("encoder.w", [2, 2]), ("score_a.weight", [3, 2]), ("score_a.bias", [3]),
                                                     ("score_b.weight", [3, 2]), ("score_b.bias", [3])])
        let selection = try XCTUnwrap(MergedDownload.select(merged, like: own, agentName: "a", headsPrefix: "score."))
        XCTAssertEqual(selection.map { "\($0.0)→\($0.1)" },
                       ["encoder.w→encoder.w", "score_a.bias→score.bias", "score_a.weight→score.weight"])
    }

    /// The default prefix keeps today's naming: classifier_<agent>. → classifier.
    func testDefaultPrefixSelectsClassifierHead() throws {
        let own = try file("own.safetensors", [("encoder.w", [2, 2]), ("classifier.weight", [3, 2])])
        let merged = try file("merged.safetensors", [("encoder.w", [2, 2]), ("classifier_a.weight", [3, 2]), ("classifier_b.weight", [3, 2])])
        let selection = try XCTUnwrap(MergedDownload.select(merged, like: own, agentName: "a"))
        XCTAssertEqual(selection.map { "\($0.0)→\($0.1)" }, ["classifier_a.weight→classifier.weight", "encoder.w→encoder.w"])
    }

    /// A shared head (no per-agent heads in the file) is used as it is.
    func testSharedHeadIsUsedAsItIs() throws {
        let own = try file("own.safetensors", [("encoder.w", [2, 2]), ("classifier.weight", [3, 2])])
        let merged = try file("merged.safetensors", [("encoder.w", [2, 2]), ("classifier.weight", [3, 2])])
        XCTAssertNil(try MergedDownload.select(merged, like: own, agentName: "a"))
    }
}
