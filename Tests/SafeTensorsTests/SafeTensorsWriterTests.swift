// The writer: byte layout per the format spec (checked by parsing the bytes here, not with
// our reader), round trips, atomicity.

import Foundation
import LinAlg
import SafeTensors
import XCTest

final class SafeTensorsWriterTests: XCTestCase {
    private func temporaryPath(_ name: String = "out.safetensors") -> String {
        let dir = NSTemporaryDirectory() + "fm-stw-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir + "/" + name
    }

    func testLayoutFollowsSpecification() throws {
        let path = temporaryPath()
        let a = Tensor<Float>(rows: [[1, 2], [3, 4]])
        let b = try Tensor<Float>(shape: [3], storage: [-1, 0.5, 8])
        try SafeTensorsWriter.write(tensors: [("layer.weight", a), ("layer.bias", b)], metadata: ["k": "v \"quoted\""], to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        XCTAssertEqual((8 + n) % 8, 0, "data section must start 8-byte aligned")
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
        XCTAssertEqual((header["__metadata__"] as? [String: String])?["k"], "v \"quoted\"")
        let w = try XCTUnwrap(header["layer.weight"] as? [String: Any])
        XCTAssertEqual(w["dtype"] as? String, "F32")
        XCTAssertEqual(w["shape"] as? [Int], [2, 2])
        XCTAssertEqual(w["data_offsets"] as? [Int], [0, 16])
        XCTAssertEqual((header["layer.bias"] as? [String: Any])?["data_offsets"] as? [Int], [16, 28])
        XCTAssertEqual(bytes.count, 8 + n + 28)
        // Little-endian IEEE floats at the announced offsets.
        let data = Array(bytes[(8 + n)...])
        func float(at i: Int) -> Float { Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[i + $1]) << (8 * $1) }) }
        XCTAssertEqual([float(at: 0), float(at: 4), float(at: 8), float(at: 12), float(at: 16), float(at: 20), float(at: 24)],
                       [1, 2, 3, 4, -1, 0.5, 8])
    }

    func testRoundTripF32AndBF16() throws {
        var rng = SplitMix64(seed: 3)
        let t = Tensor<Float>(randomNormal: [17, 5], using: &rng)
        let path = temporaryPath()
        try SafeTensorsWriter.write(tensors: [("t", t)], metadata: ["a": "1"], to: path)
        let back = try SafeTensorsFile(path: path)
        XCTAssertEqual(try back.floatTensor("t"), t)
        XCTAssertEqual(back.metadata, ["a": "1"])

        let bfPath = temporaryPath("bf.safetensors")
        try SafeTensorsWriter.write(tensors: [("t", t)], to: bfPath, dtype: .BF16)
        let bf = try SafeTensorsFile(path: bfPath).floatTensor("t")
        // bf16 keeps 8 significant bits (7 stored): rounding to nearest errs by at most half a
        // unit in the last place, 2^-8 relative to the value's power of two, so ≤ 2^-8·|x|.
        for (x, y) in zip(t.storage, bf.storage) { XCTAssertLessThanOrEqual(abs(x - y), abs(x) * 0x1p-8) }
    }

    func testFailedWriteLeavesPreviousFileIntact() throws {
        let path = temporaryPath()
        try SafeTensorsWriter.write(tensors: [("old", Tensor<Float>(rows: [[1]]))], to: path)
        struct Boom: Error {}
        XCTAssertThrowsError(try SafeTensorsWriter.write(layout: [("new", [1, 1]), ("later", [2])], to: path) { name in
            if name == "later" { throw Boom() }
            return Tensor<Float>(rows: [[2]])
        })
        XCTAssertEqual(try SafeTensorsFile(path: path).names, ["old"], "the old file must survive a failed write")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        XCTAssertEqual(leftovers, ["out.safetensors"], "no temporary file may remain")
    }

    func testDuplicateNamesAndShapeDriftAreRefused() throws {
        let path = temporaryPath()
        XCTAssertThrowsError(try SafeTensorsWriter.write(tensors: [("x", .zeros(1)), ("x", .zeros(1))], to: path)) {
            XCTAssertEqual($0 as? SafeTensorsError, .duplicateName(path: path, tensor: "x"))
        }
        XCTAssertThrowsError(try SafeTensorsWriter.write(layout: [("x", [2])], to: path) { _ in .zeros(3) })
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
