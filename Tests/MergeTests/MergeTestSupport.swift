// Shared helpers for the Merge tests: the numpy fixture loader, JSON → MergeValue, random
// toy models, and an independent Householder-QR least-squares solver for closed forms.

import Foundation
import LinAlg
@testable import Merge
import XCTest

enum TestSupport {
    static let fixtureDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/merge")

    /// JSON (from JSONSerialization) → MergeValue.
    static func mergeValue(_ any: Any) -> MergeValue {
        switch any {
        case let n as NSNumber: return .number(n.doubleValue)   // the fixture has no booleans
        case let s as String: return .string(s)
        case let a as [Any]: return .list(a.map(mergeValue))
        case let m as [String: Any]: return .map(m.mapValues(mergeValue))
        default: return .null
        }
    }

    static func tensor(_ json: Any) throws -> Tensor<Float> {
        let m = json as! [String: Any]
        let shape = (m["shape"] as! [NSNumber]).map(\.intValue)
        let data = (m["data"] as! [NSNumber]).map { Float($0.doubleValue) }
        return try Tensor(shape: shape, storage: data)
    }

    static func doubleTensor(_ json: Any) -> (shape: [Int], data: [Double]) {
        let m = json as! [String: Any]
        return ((m["shape"] as! [NSNumber]).map(\.intValue), (m["data"] as! [NSNumber]).map(\.doubleValue))
    }

    static func namedTensors(_ json: Any) throws -> NamedTensors {
        let m = json as! [String: Any]
        return try NamedTensors(m.keys.sorted().map { ($0, try tensor(m[$0]!)) })
    }

    struct Fixture {
        var models: [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)]
        var base: NamedTensors
        var cases: [(method: String, parameters: [String: MergeValue], expected: [String: (shape: [Int], data: [Double])])]
    }

    static func loadFixture(_ file: String = "merge_fixture.json") throws -> Fixture {
        let data = try Data(contentsOf: fixtureDirectory.appendingPathComponent(file))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var models: [(name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)] = []
        for m in root["models"] as! [[String: Any]] {
            let stats = m["stats"] as! [String: Any]
            models.append((m["name"] as! String, try namedTensors(m["tensors"]!),
                           NamedStatistics(tensors: try namedTensors(stats["tensors"]!), metadata: stats["metadata"] as! [String: String]),
                           (m["weight"] as! NSNumber).doubleValue))
        }
        let cases = (root["cases"] as! [[String: Any]]).map { c in
            (c["method"] as! String,
             (c["parameters"] as! [String: Any]).mapValues(mergeValue),
             (c["expected"] as! [String: Any]).mapValues(doubleTensor))
        }
        return Fixture(models: models, base: try namedTensors(root["base"]!), cases: cases)
    }

    /// Runs every fixture case of `method` and checks all tensors to `tolerance` (relative to max(1, |x|)).
    static func checkFixture(method: String, fixtureFile: String = "merge_fixture.json", tolerance: Double = 1e-5,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        let fixture = try loadFixture(fixtureFile)
        let cases = fixture.cases.filter { $0.method == method }
        XCTAssertFalse(cases.isEmpty, "no fixture cases for \(method)", file: file, line: line)
        for c in cases {
            let result = try MethodRegistry.method(named: method).merge(models: fixture.models, parameters: c.parameters, base: fixture.base)
            XCTAssertEqual(Set(result.tensors.names), Set(c.expected.keys), "\(method) \(c.parameters): tensor names", file: file, line: line)
            for (name, expected) in c.expected {
                guard let got = result.tensors[name] else { continue }
                XCTAssertEqual(got.shape, expected.shape, "\(name) shape", file: file, line: line)
                let worst = zip(got.storage, expected.data).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, tolerance, "\(method) \(c.parameters): \(name) differs from numpy by \(worst)", file: file, line: line)
            }
        }
    }

    static func random(_ shape: [Int], std: Double = 1, _ rng: inout SplitMix64) -> Tensor<Float> {
        Tensor<Float>(randomNormal: shape, std: std, using: &rng)
    }

    /// Gram XᵀX (d×d) of X (rows×d), computed in Double with plain loops, stored fp32.
    static func gram(_ x: [[Double]]) -> Tensor<Float> {
        let d = x[0].count
        var g = Tensor<Float>(shape: [d, d])
        for i in 0..<d { for j in 0..<d { g[i, j] = Float(x.reduce(0) { $0 + $1[i] * $1[j] }) } }
        return g
    }

    /// Least squares min ‖A B − Y‖ (A m×n with m ≥ n, full column rank) by Householder QR, plain
    /// Double loops — independent of LinAlg and of the merge code. Returns B (n × Y's columns).
    static func leastSquares(_ aIn: [[Double]], _ yIn: [[Double]]) -> [[Double]] {
        var a = aIn, y = yIn
        let m = a.count, n = a[0].count, p = y[0].count
        for k in 0..<n {
            var norm = 0.0
            for i in k..<m { norm += a[i][k] * a[i][k] }
            norm = norm.squareRoot()
            let alpha = a[k][k] > 0 ? -norm : norm
            var v = [Double](repeating: 0, count: m)
            for i in k..<m { v[i] = a[i][k] }
            v[k] -= alpha
            let vv = v[k...].reduce(0) { $0 + $1 * $1 }
            guard vv > 0 else { continue }
            for j in k..<n {
                var s = 0.0
                for i in k..<m { s += v[i] * a[i][j] }
                for i in k..<m { a[i][j] -= 2 * s / vv * v[i] }
            }
            for j in 0..<p {
                var s = 0.0
                for i in k..<m { s += v[i] * y[i][j] }
                for i in k..<m { y[i][j] -= 2 * s / vv * v[i] }
            }
        }
        var b = [[Double]](repeating: [Double](repeating: 0, count: p), count: n)
        for j in 0..<p {
            for i in stride(from: n - 1, through: 0, by: -1) {
                var s = y[i][j]
                for l in (i + 1)..<max(n, i + 1) { s -= a[i][l] * b[l][j] }
                b[i][j] = s / a[i][i]
            }
        }
        return b
    }

    static func maxRelativeDifference(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Double {
        zip(a.storage, b.storage).map { abs(Double($0) - Double($1)) / max(1, abs(Double($1))) }.max() ?? 0
    }
}

extension TestSupport {
    /// Folds fixture models a, b; tries a corrupted copy of c (must throw); then folds c and
    /// checks the result equals folding a, b, c with no failed attempt in between.
    static func checkRejectedModelLeavesNoTrace(method: String, parameters: [String: MergeValue],
                                                corrupt: (inout NamedTensors, inout NamedStatistics) -> Void,
                                                file: StaticString = #filePath, line: UInt = #line) throws {
        let fixture = try loadFixture(method == "mats" ? "mats_fixture.json" : "merge_fixture.json")
        let m = try MethodRegistry.method(named: method)
        let clean = try m.merge(models: fixture.models, parameters: parameters, base: fixture.base)
        let accumulator = try m.makeAccumulator(parameters: parameters, base: fixture.base)
        for model in fixture.models.prefix(2) {
            try accumulator.add(model: model.tensors, statistics: model.statistics, weight: model.weight, name: model.name)
        }
        let last = fixture.models[2]
        var (tensors, statistics) = (last.tensors, last.statistics)
        corrupt(&tensors, &statistics)
        XCTAssertThrowsError(try accumulator.add(model: tensors, statistics: statistics, weight: last.weight, name: last.name),
                             "the corrupted model must be rejected", file: file, line: line)
        try accumulator.add(model: last.tensors, statistics: last.statistics, weight: last.weight, name: last.name)
        let result = try accumulator.finish()
        XCTAssertEqual(result.tensors.names, clean.tensors.names, file: file, line: line)
        for name in clean.tensors.names {
            XCTAssertEqual(result.tensors[name], clean.tensors[name], "\(method): \(name) changed by a rejected model", file: file, line: line)
        }
        XCTAssertEqual(result.report.models, clean.report.models, file: file, line: line)
    }
}
