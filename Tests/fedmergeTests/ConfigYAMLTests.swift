// Tests of DaemonSupport's parseYAML (Sources/DaemonSupport/ConfigValue.swift): YAML scalars
// keep their YAML types, nesting is preserved, and a full merge config decodes into a MergeSpec.

import DaemonSupport
import Merge
import XCTest

final class ConfigYAMLTests: XCTestCase {
    func testScalarsKeepTheirYAMLTypes() throws {
        let value = try parseYAML("""
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
        XCTAssertEqual(try parseYAML(""), .null)
    }

    func testReaderNamesFileAndKeyPathInErrors() throws {
        let reader = ConfigReader(file: "agg.yaml", map: ["round": .map(["methods": .list([.map(["name": .number(3)]), .string("x")])])])
        let methods = try reader.section("round")
        XCTAssertThrowsError(try methods.sections("methods")) {
            XCTAssertEqual("\($0)", "agg.yaml: 'round.methods[1]' must be a mapping, found a string")
        }
        XCTAssertThrowsError(try methods.onlyKeys(["subset"])) {
            XCTAssertEqual("\($0)", "agg.yaml: unknown key 'round.methods' (allowed here: subset)")
        }
        XCTAssertThrowsError(try methods.int("min_agents", range: 1...3)) {
            XCTAssertEqual("\($0)", "agg.yaml: missing key 'round.min_agents' (a whole number)")
        }
    }

    func testMergekitStyleConfigDecodes() throws {
        let spec = try MergeSpec(from: try parseYAML("""
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
