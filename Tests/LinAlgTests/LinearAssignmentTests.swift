// Tests of LinearAssignment.swift: the optimum equals brute force over every permutation of
// small random matrices, and scipy's linear_sum_assignment on n = 50 and 200
// (Tests/Fixtures/linalg/make_assignment_fixture.py).

import Foundation
import LinAlg
import XCTest

final class LinearAssignmentTests: XCTestCase {
    /// The best total over all n! permutations (rows × cols, rows ≤ cols: all injections).
    private func bruteForce(_ c: Tensor<Double>, maximize: Bool) -> Double {
        let (n, m) = (c.shape[0], c.shape[1])
        var best = maximize ? -Double.infinity : Double.infinity
        var used = [Bool](repeating: false, count: m)
        func walk(_ row: Int, _ sum: Double) {
            if row == n { best = maximize ? max(best, sum) : min(best, sum); return }
            for j in 0..<m where !used[j] {
                used[j] = true
                walk(row + 1, sum + c[row, j])
                used[j] = false
            }
        }
        walk(0, 0)
        return best
    }

    private func assertIsInjection(_ a: [Int], rows: Int, cols: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, rows, file: file, line: line)
        XCTAssertEqual(Set(a).count, rows, "columns repeat: \(a)", file: file, line: line)
        XCTAssertTrue(a.allSatisfy { (0..<cols).contains($0) }, "column out of range: \(a)", file: file, line: line)
    }

    func testEqualsBruteForceOnSmallRandomMatrices() throws {
        for seed in 0..<60 {
            var rng = SplitMix64(seed: UInt64(seed))
            let n = 1 + seed % 8
            let m = seed % 3 == 0 ? n : min(8, n + seed % 3)
            // Integer costs make ties common, which is where a wrong update would show.
            let integers = seed % 2 == 0
            var c = Tensor<Double>(shape: [n, m])
            for i in 0..<c.count { c.storage[i] = integers ? Double(rng.next() % 5) : rng.nextNormal() }
            for maximize in [false, true] {
                let a = try LinearAssignment.solve(c, maximize ? .maximize : .minimize)
                assertIsInjection(a, rows: n, cols: m)
                XCTAssertEqual(LinearAssignment.total(c, a), bruteForce(c, maximize: maximize), accuracy: 1e-12,
                               "seed \(seed), n \(n)×\(m), maximize \(maximize)")
            }
        }
    }

    func testMatchesScipyLinearSumAssignment() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/linalg/assignment.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        let cases = try XCTUnwrap(object?["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 4)
        for k in cases {
            let n = try XCTUnwrap(k["n"] as? Int), seed = try XCTUnwrap(k["seed"] as? Int)
            let maximize = try XCTUnwrap(k["maximize"] as? Bool)
            var rng = SplitMix64(seed: UInt64(seed))
            var c = Tensor<Double>(shape: [n, n])
            for i in 0..<c.count { c.storage[i] = Double(rng.next() >> 11) * 0x1p-53 }
            XCTAssertEqual(c.storage.reduce(0, +), try XCTUnwrap(k["checksum"] as? Double), accuracy: 1e-9, "generator differs from the script's")
            let a = try LinearAssignment.solve(c, maximize ? .maximize : .minimize)
            assertIsInjection(a, rows: n, cols: n)
            XCTAssertEqual(LinearAssignment.total(c, a), try XCTUnwrap(k["optimum"] as? Double), accuracy: 1e-9, "n \(n), maximize \(maximize)")
        }
    }

    func testRejectsNaNAndMoreRowsThanColumns() {
        XCTAssertThrowsError(try LinearAssignment.solve(Tensor(rows: [[1, .nan], [0, 1]]))) {
            XCTAssertEqual($0 as? LinAlgError, .nonFinite(operation: "linear assignment"))
        }
        XCTAssertThrowsError(try LinearAssignment.solve(Tensor(shape: [3, 2]))) {
            guard case .shapeMismatch(_, [3], [2])? = $0 as? LinAlgError else { return XCTFail("\($0)") }
        }
    }
}
