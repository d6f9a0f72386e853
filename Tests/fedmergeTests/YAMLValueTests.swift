// Tests of Sources/fedmerge/YAMLValue.swift: YAML scalars keep their YAML types, nesting is
// preserved, and a full merge config decodes into a MergeSpec.

@testable import fedmerge
import Merge
import XCTest

final class YAMLValueTests: XCTestCase {
    func testScalarsKeepTheirYAMLTypes() throws {
        let value = try YAMLValue.parse("""
        a: 1
        b: 0.25
        c: keep
        d: true
        e: null
        f: "1"
        g: [1, x]
        h: {k: 2}
        """)
        XCTAssertEqual(value, .map(["a": .number(1), "b": .number(0.25), "c": .string("keep"), "d": .bool(true), "e": .null,
                                    "f": .string("1"), "g": .list([.number(1), .string("x")]), "h": .map(["k": .number(2)])]))
    }

    func testEmptyDocumentIsNull() throws {
        XCTAssertEqual(try YAMLValue.parse(""), .null)
    }

    func testMergekitStyleConfigDecodes() throws {
        let spec = try MergeSpec(from: try YAMLValue.parse("""
        merge_method: regmean
        models:
          - model: agents/a/model
            stats: agents/a/stats.safetensors
            parameters: {weight: 2}
          - model: agents/b/model
        parameters:
          alpha:
            - filter: attention
              value: 0.5
            - value: 0.95
          heads: per_label
        dtype: float32
        """), file: "merge.yaml")
        XCTAssertEqual(spec.models.map(\.name), ["a", "b"])
        XCTAssertEqual(spec.models[0].weight, 2)
        XCTAssertEqual(spec.choice.parameters.number("alpha", forTensor: "x.attention.self.query.weight"), 0.5)
        XCTAssertEqual(spec.choice.requiredStatistics, [.gram, .labelCounts])
    }
}
