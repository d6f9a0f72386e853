// The reader against a file written by the independent Hugging Face `safetensors` package,
// and its refusal of corrupt files.

import Foundation
import LinAlg
import SafeTensors
import XCTest

final class SafeTensorsFileTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/safetensors")

    func testReadsEveryDTypeWrittenByReferenceImplementation() throws {
        let file = try SafeTensorsFile(path: Self.fixtures.appendingPathComponent("reference.safetensors").path)
        let reference = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.fixtures.appendingPathComponent("reference.json"))) as? [String: Any])
        let tensors = try XCTUnwrap(reference["tensors"] as? [String: [String: Any]])
        XCTAssertEqual(Set(file.names), Set(tensors.keys))
        XCTAssertEqual(file.metadata, reference["metadata"] as? [String: String])
        for name in ["w.f32", "h.f16", "b.bf16", "d.f64", "empty"] {
            let expected = try XCTUnwrap(tensors[name]?["values"] as? [Double])
            let tensor = try file.floatTensor(name)
            XCTAssertEqual(tensor.shape, tensors[name]?["shape"] as? [Int], name)
            // Every value is exactly representable in Float except the f64 third (rounds once).
            for (got, want) in zip(tensor.storage, expected) {
                XCTAssertEqual(Double(got), Double(Float(want)), name)
            }
        }
        XCTAssertEqual(try file.int64Values("ids.i64"), [0, -1, 1 << 40, 7])
        XCTAssertEqual(try file.doubleTensor("d.f64").storage, [1.0 / 3.0, -2.0, 1e-300])
        XCTAssertEqual(file.entry("h.f16")?.dtype, .F16)
    }

    func testMissingTensorIsNamed() throws {
        let file = try SafeTensorsFile(path: Self.fixtures.appendingPathComponent("reference.safetensors").path)
        XCTAssertThrowsError(try file.floatTensor("nope")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .missingTensor(path: file.path, tensor: "nope"))
        }
        XCTAssertThrowsError(try file.floatTensor("ids.i64"))
    }

    // MARK: corrupt files

    private func writeRaw(header: String, data: [UInt8], declaredLength: UInt64? = nil) throws -> String {
        let path = NSTemporaryDirectory() + "fm-st-\(UUID().uuidString).safetensors"
        var bytes = [UInt8](repeating: 0, count: 8)
        var n = declaredLength ?? UInt64(header.utf8.count)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: n); n >>= 8 }
        try Data(bytes + Array(header.utf8) + data).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func assertRejected(_ path: String, mentioning words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(path: path), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), "error must name the file: \(text)", file: file, line: line)
            for w in words { XCTAssertTrue(text.contains(w), "error must mention \(w): \(text)", file: file, line: line) }
        }
    }

    func testTruncatedDataIsRejectedNamingTensor() throws {
        let path = try writeRaw(header: #"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, data: [UInt8](repeating: 0, count: 12))
        assertRejected(path, mentioning: ["truncated", "'w'"])
    }

    func testShapeAndByteRangeDisagreementIsRejected() throws {
        let path = try writeRaw(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8))
        assertRejected(path, mentioning: ["'w'", "data_offsets"])
    }

    func testOverlappingRangesAreRejected() throws {
        let path = try writeRaw(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                                data: [UInt8](repeating: 0, count: 12))
        assertRejected(path, mentioning: ["overlap", "'a'", "'b'"])
    }

    func testUnknownDTypeAndBadJSONAndHugeHeaderAreRejected() throws {
        assertRejected(try writeRaw(header: #"{"q":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#, data: [0]), mentioning: ["Q4", "'q'"])
        assertRejected(try writeRaw(header: "{not json", data: []), mentioning: ["JSON"])
        assertRejected(try writeRaw(header: "{}", data: [], declaredLength: 1 << 40), mentioning: ["header length"])
        assertRejected(try writeRaw(header: "{}", data: [], declaredLength: 500), mentioning: ["truncated"])
        let short = NSTemporaryDirectory() + "fm-st-short-\(UUID().uuidString)"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: short))
        assertRejected(short, mentioning: ["truncated"])
        try? FileManager.default.removeItem(atPath: short)
    }

    func testNonexistentFileIsNamed() {
        assertRejected("/nonexistent/dir/model.safetensors", mentioning: ["cannot open"])
    }
}
