// Loads the numpy reference values written by Tests/Fixtures/linalg/make_fixture.py.

import Foundation
import LinAlg
import XCTest

enum LinAlgFixture {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/linalg/linalg.json")

    static func load() throws -> [String: [String: Any]] {
        let data = try Data(contentsOf: url)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
    }

    static func doubles(_ section: [String: Any], _ key: String) throws -> [Double] {
        try XCTUnwrap(section[key] as? [Double], "fixture key \(key)")
    }

    static func matrix(_ section: [String: Any], _ key: String, _ rows: Int, _ cols: Int) throws -> Tensor<Double> {
        try Tensor(shape: [rows, cols], storage: doubles(section, key))
    }
}

func assertClose(_ a: [Double], _ b: [Double], tolerance: Double, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "count \(message)", file: file, line: line)
    let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(diff, tolerance, "max abs diff \(diff) \(message)", file: file, line: line)
}
