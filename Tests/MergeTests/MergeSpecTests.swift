// Tests of MergeSpec.swift (and MergeParameters.swift through it): a good config decodes with
// defaults filled in, and each kind of bad config gives its own error naming file and key.

import LinAlg
@testable import Merge
import XCTest

final class MergeSpecTests: XCTestCase {
    private func spec(_ top: [String: MergeValue]) throws -> MergeSpec { try MergeSpec(from: .map(top), file: "merge.yaml") }

    private let models: MergeValue = .list([
        .map(["model": .string("agents/a/model"), "stats": .string("agents/a/stats.safetensors"), "parameters": .map(["weight": .number(2)])]),
        .map(["model": .string("agents/b/model")]),
    ])

    private func expect(_ top: [String: MergeValue], _ expected: ConfigError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try spec(top), file: file, line: line) {
            XCTAssertEqual($0 as? ConfigError, expected, file: file, line: line)
            XCTAssertTrue("\($0)".hasPrefix("merge.yaml: "), "\($0)", file: file, line: line)
        }
    }

    func testValidConfigDecodesWithDefaults() throws {
        let s = try spec(["merge_method": .string("regmean"), "models": models, "parameters": .map(["alpha": .number(0.5)])])
        XCTAssertEqual(s.choice.name, "regmean")
        XCTAssertEqual(s.models.map(\.name), ["a", "b"])
        XCTAssertEqual(s.models.map(\.weight), [2, 1])
        XCTAssertEqual(s.models[0].stats, "agents/a/stats.safetensors")
        XCTAssertEqual(s.choice.parameters.number("alpha"), 0.5)
        XCTAssertEqual(s.choice.parameters.string("gram_normalize"), "mean")
        XCTAssertEqual(s.choice.parameters.string("heads"), "average")
        XCTAssertEqual(s.choice.requiredStatistics, [.gram])
        XCTAssertEqual(s.dtype, "float32")
    }

    func testPerTensorAlphaPicksTheFirstMatchingFilter() throws {
        let s = try spec(["merge_method": .string("regmean"), "models": models, "parameters": .map(["alpha": .list([
            .map(["filter": .string("attention"), "value": .number(0.5)]), .map(["value": .number(0.95)])])])])
        XCTAssertEqual(s.choice.parameters.number("alpha", forTensor: "bert.encoder.layer.0.attention.self.query.weight"), 0.5)
        XCTAssertEqual(s.choice.parameters.number("alpha", forTensor: "bert.encoder.layer.0.output.dense.weight"), 0.95)
    }

    func testDocumentThatIsNotAMapping() {
        XCTAssertThrowsError(try MergeSpec(from: .list([]), file: "merge.yaml")) {
            XCTAssertEqual($0 as? ConfigError, .wrongType(file: "merge.yaml", key: "(top level)", expected: "a mapping (key: value)", found: "a list"))
        }
    }

    func testMissingMergeMethod() { expect(["models": models], .missing(file: "merge.yaml", key: "merge_method", expected: "the merge method, e.g. regmean (`fedmerge merge --methods` lists them)")) }

    func testUnknownMethodListsTheKnownOnes() {
        expect(["merge_method": .string("slerp"), "models": models],
               .rejected(file: "merge.yaml", key: "merge_method", reason: MergeError.unknownMethod(name: "slerp", known: MethodRegistry.names).description))
        XCTAssertTrue(MergeError.unknownMethod(name: "slerp", known: MethodRegistry.names).description.contains("regmean"))
    }

    func testUnknownTopLevelKey() {
        expect(["merge_method": .string("average"), "models": models, "tokenizer_source": .string("x")],
               .unknownKey(file: "merge.yaml", key: "tokenizer_source", allowed: MergeSpec.topLevelKeys))
    }

    func testUnknownParameterListsTheMethodsParameters() {
        expect(["merge_method": .string("regmean"), "models": models, "parameters": .map(["density": .number(0.2)])],
               .rejected(file: "merge.yaml", key: "parameters", reason: MergeError.unknownParameter(method: "regmean", key: "density", known: RegMean().allParameters.map(\.name)).description))
    }

    func testParameterOutOfRange() {
        expect(["merge_method": .string("regmean"), "models": models, "parameters": .map(["alpha": .number(1.5)])],
               .rejected(file: "merge.yaml", key: "parameters", reason: MergeError.badParameter(key: "alpha", value: "1.5", expected: "a number in 0.0...1.0 or a list of {filter: <substring>, value: <number>}").description))
    }

    func testBadChoiceParameter() {
        expect(["merge_method": .string("average"), "models": models, "parameters": .map(["heads": .string("vote")])],
               .rejected(file: "merge.yaml", key: "parameters", reason: MergeError.badParameter(key: "heads", value: "'vote'", expected: "one of average | keep | per_label").description))
    }

    func testMissingBaseModelForTaskArithmetic() {
        expect(["merge_method": .string("task_arithmetic"), "models": models],
               .rejected(file: "merge.yaml", key: "base_model", reason: MergeError.baseModelRequired(method: "task_arithmetic").description))
    }

    func testMissingModels() { expect(["merge_method": .string("average")], .missing(file: "merge.yaml", key: "models", expected: "a list of {model: DIR, stats: FILE}")) }

    func testEmptyModels() { expect(["merge_method": .string("average"), "models": .list([])], .invalid(file: "merge.yaml", key: "models", value: "[]", allowed: "at least one model")) }

    func testModelsNotAList() {
        expect(["merge_method": .string("average"), "models": .string("a")],
               .wrongType(file: "merge.yaml", key: "models", expected: "a list", found: "'a'"))
    }

    func testModelEntryWithoutPath() {
        expect(["merge_method": .string("average"), "models": .list([.map(["stats": .string("s")])])],
               .missing(file: "merge.yaml", key: "models[0].model", expected: "a model directory"))
    }

    func testUnknownModelKey() {
        expect(["merge_method": .string("average"), "models": .list([.map(["model": .string("a"), "density": .number(1)])])],
               .unknownKey(file: "merge.yaml", key: "models[0].density", allowed: MergeSpec.modelKeys))
    }

    func testNonPositiveModelWeight() {
        expect(["merge_method": .string("average"), "models": .list([.map(["model": .string("a"), "parameters": .map(["weight": .number(-1)])])])],
               .wrongType(file: "merge.yaml", key: "models[0].parameters.weight", expected: "a number > 0", found: "-1"))
    }

    func testDuplicateModelNames() {
        expect(["merge_method": .string("average"), "models": .list([.map(["model": .string("x/a/model")]), .map(["model": .string("y/a")])])],
               .invalid(file: "merge.yaml", key: "models[1].name", value: "'a'", allowed: "a name no other model has; set distinct `name:` keys"))
    }

    func testUnsupportedDType() {
        expect(["merge_method": .string("average"), "models": models, "dtype": .string("int8")],
               .invalid(file: "merge.yaml", key: "dtype", value: "'int8'", allowed: "one of float32"))
    }
}
