// Tests of ModelFold.swift: every later model is checked against the first (names, shapes,
// finiteness, weights), and the heads modes name and map their tensors.

import LinAlg
@testable import Merge
import XCTest

final class ModelFoldTests: XCTestCase {
    private func model(_ pairs: [(String, [Int])]) throws -> NamedTensors {
        try NamedTensors(pairs.map { ($0.0, Tensor<Float>(shape: $0.1, repeating: 1)) })
    }

    private func expectError(_ second: NamedTensors, _ expected: MergeError, weight: Double = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        let accumulator = try Average().makeAccumulator(parameters: [:])
        try accumulator.add(model: try model([("x", [2, 3]), ("y", [4])]), statistics: NamedStatistics(), weight: 1, name: "first")
        XCTAssertThrowsError(try accumulator.add(model: second, statistics: NamedStatistics(), weight: weight, name: "second"), file: file, line: line) {
            XCTAssertEqual($0 as? MergeError, expected, file: file, line: line)
            XCTAssertTrue("\($0)".contains("second"), "message names the model: \($0)", file: file, line: line)
        }
    }

    func testMissingTensorIsNamed() throws {
        try expectError(try model([("x", [2, 3])]), .missingTensor(model: "second", tensor: "y"))
    }

    func testUnexpectedTensorIsNamed() throws {
        try expectError(try model([("x", [2, 3]), ("y", [4]), ("z", [1])]), .unexpectedTensor(model: "second", tensor: "z"))
    }

    func testShapeMismatchNamesTensorAndBothShapes() throws {
        try expectError(try model([("x", [3, 2]), ("y", [4])]), .shapeMismatch(model: "second", tensor: "x", expected: [2, 3], actual: [3, 2]))
        XCTAssertTrue(MergeError.shapeMismatch(model: "m", tensor: "x", expected: [2, 3], actual: [3, 2]).description.contains("(3×2), expected (2×3)"))
    }

    func testNonFiniteValuesAreNamed() throws {
        var bad = try model([("x", [2, 3]), ("y", [4])])
        var y = bad["y"]!
        y.storage[2] = .nan
        bad.set("y", y)
        try expectError(bad, .nonFinite(model: "second", tensor: "y"))
    }

    func testNonPositiveWeightIsAnError() throws {
        try expectError(try model([("x", [2, 3]), ("y", [4])]), .badWeight(model: "second", weight: 0), weight: 0)
    }

    func testKeepHeadsWritesOneHeadPerModelAndTheMapping() throws {
        let fixture = try TestSupport.loadFixture()
        let result = try Average().merge(models: fixture.models, parameters: ["heads": .string("keep")])
        XCTAssertNil(result.tensors["classifier.weight"])
        for name in ["a", "b", "c"] {
            XCTAssertEqual(result.tensors["classifier_\(name).weight"], fixture.models.first { $0.name == name }!.tensors["classifier.weight"])
            XCTAssertEqual(result.report.headsMapping[name], "classifier_\(name).")
        }
    }

    /// Different tasks: heads of 3 and 2 labels are kept side by side; the body is averaged;
    /// with heads: average the same pair is still a shape error.
    func testKeepHeadsAcceptsHeadsOfDifferentLabelCounts() throws {
        let a = try NamedTensors([("body.weight", Tensor<Float>(shape: [2, 2], repeating: 1)),
                                  ("classifier.weight", Tensor<Float>(shape: [3, 2], repeating: 5))])
        let b = try NamedTensors([("body.weight", Tensor<Float>(shape: [2, 2], repeating: 3)),
                                  ("classifier.weight", Tensor<Float>(shape: [2, 2], repeating: 7))])
        let models = [(name: "a", tensors: a, statistics: NamedStatistics(), weight: 1.0), (name: "b", tensors: b, statistics: NamedStatistics(), weight: 1.0)]
        let result = try Average().merge(models: models, parameters: ["heads": .string("keep")])
        XCTAssertEqual(result.tensors["body.weight"]?.storage, [2, 2, 2, 2])
        XCTAssertEqual(result.tensors["classifier_a.weight"]?.shape, [3, 2])
        XCTAssertEqual(result.tensors["classifier_b.weight"]?.storage, [7, 7, 7, 7])
        XCTAssertThrowsError(try Average().merge(models: models, parameters: [:])) {
            XCTAssertEqual($0 as? MergeError, .shapeMismatch(model: "b", tensor: "classifier.weight", expected: [3, 2], actual: [2, 2]))
        }
    }

    func testPerLabelWithoutLabelCountsIsANamedError() throws {
        var models = try TestSupport.loadFixture().models
        models[1].statistics.metadata["train.label_counts"] = nil
        XCTAssertThrowsError(try Average().merge(models: models, parameters: ["heads": .string("per_label")])) {
            guard case .missingStatistic(model: "b", let key)? = $0 as? MergeError, key.hasPrefix("train.label_counts") else { return XCTFail("\($0)") }
        }
    }

    func testPerLabelWithWrongLabelCountIsANamedError() throws {
        var models = try TestSupport.loadFixture().models
        for i in 0..<3 { models[i].statistics.metadata["train.label_counts"] = "[1, 2, 3]" }
        XCTAssertThrowsError(try Average().merge(models: models, parameters: ["heads": .string("per_label")])) {
            guard case .badMetadata(model: "a", key: "train.label_counts", _)? = $0 as? MergeError else { return XCTFail("\($0)") }
        }
    }

    func testRejectedModelLeavesHeadsAndAveragesUnchanged() throws {
        try TestSupport.checkRejectedModelLeavesNoTrace(method: "average", parameters: ["heads": .string("per_label")]) { tensors, _ in
            var t = tensors["bert.encoder.layer.1.output.dense.bias"]!
            t.storage[1] = .infinity
            tensors.set("bert.encoder.layer.1.output.dense.bias", t)
        }
        try TestSupport.checkRejectedModelLeavesNoTrace(method: "ties", parameters: ["heads": .string("keep")]) { tensors, _ in
            tensors.remove("classifier.bias")
        }
    }
}
