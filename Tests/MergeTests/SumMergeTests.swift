// SumMerge (Summands + MergeFromSums): a merge run on the sums of the agents' summands gives
// the clear method's merge — average, fisher, regmean at α 0.5 and 1.0 from one pair of
// sums, every heads mode — both from plain fp64 sums and through SecureSum's int64 fixed
// point and pairwise masks; methods needing per-model terms are refused.

import Foundation
import LinAlg
@testable import Merge
import MergeIO
import SecureSum
import XCTest

final class SumMergeTests: XCTestCase {
    typealias Model = (name: String, tensors: NamedTensors, statistics: NamedStatistics, weight: Double)

    private func contributions(_ models: [Model], method: String, parameters: [String: MergeValue]) throws -> [AgentSummands] {
        try models.map { try SumMerge.summands(method: method, parameters: parameters, model: $0.tensors, statistics: $0.statistics,
                                               weight: $0.weight, name: $0.name) }
    }

    /// Σ over agents in fp64, summand by summand.
    private func plainSums(_ parts: [AgentSummands]) -> [[Double]] {
        parts[0].values.indices.map { k in
            parts.dropFirst().reduce(parts[0].values[k]) { acc, p in zip(acc, p.values[k]).map { $0 + $1 } }
        }
    }

    private func mergeFromSums(_ parts: [AgentSummands], _ sums: [[Double]], models: [Model], parameters: [String: MergeValue]) throws -> MergeResult {
        for p in parts.dropFirst() { XCTAssertEqual(p.layout, parts[0].layout, "every agent must build the same layout") }
        return try SumMerge.merge(layout: parts[0].layout, parameters: parameters, sums: sums,
                                  models: models.map { ($0.name, $0.weight) },
                                  keptHeads: Dictionary(uniqueKeysWithValues: zip(models.map(\.name), parts.map(\.keptHeads))))
    }

    /// max |a − b| / max |b| over each tensor; the names must agree.
    private func assertSameModel(_ got: MergeResult, _ expected: MergeResult, tolerance: Double, _ label: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.tensors.names, expected.tensors.names, label, file: file, line: line)
        var largest = 0.0
        defer { print("sums vs clear, \(label): max relative difference \(largest)") }
        for n in expected.tensors.names {
            guard let a = got.tensors[n], let b = expected.tensors[n] else { continue }
            XCTAssertEqual(a.shape, b.shape, "\(label) \(n)", file: file, line: line)
            let scale = max(b.storage.map { abs(Double($0)) }.max() ?? 0, 1e-30)
            let worst = zip(a.storage, b.storage).map { abs(Double($0) - Double($1)) }.max() ?? 0
            largest = max(largest, worst / scale)
            XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(label): \(n) differs by \(worst / scale) relative", file: file, line: line)
        }
        XCTAssertEqual(got.report.entries(rule: "regmean"), expected.report.entries(rule: "regmean"), "\(label): solve paths", file: file, line: line)
    }

    func testSumsGiveTheClearMergeOnEveryFixtureCase() throws {
        let fixture = try TestSupport.loadFixture()
        var cases = fixture.cases.filter { SumMerge.methods.contains($0.method) }.map { ($0.method, $0.parameters, Optional($0.expected)) }
        cases += [("regmean", ["alpha": .number(0.5)], nil), ("regmean", ["alpha": .number(1.0), "heads": .string("per_label")], nil)]
        XCTAssertGreaterThanOrEqual(cases.count, 10)
        for (method, parameters, numpy) in cases {
            let clear = try MethodRegistry.method(named: method).merge(models: fixture.models, parameters: parameters)
            let parts = try contributions(fixture.models, method: method, parameters: parameters)
            let secure = try mergeFromSums(parts, plainSums(parts), models: fixture.models, parameters: parameters)
            assertSameModel(secure, clear, tolerance: 1e-6, "\(method) \(parameters)")
            // And the numpy reference of the fixture, as the clear methods are held to it.
            for (name, expected) in numpy ?? [:] {
                let got = try XCTUnwrap(secure.tensors[name], name)
                let worst = zip(got.storage, expected.data).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(method) \(parameters): \(name) vs numpy")
            }
        }
    }

    func testOnePairOfSumsServesEveryAlpha() throws {
        let fixture = try TestSupport.loadFixture()
        // The agents' summands do not depend on α: the same parts for α 0.5 and 1.0.
        let parts = try contributions(fixture.models, method: "regmean", parameters: [:])
        let sums = plainSums(parts)
        XCTAssertEqual(try contributions(fixture.models, method: "regmean", parameters: ["alpha": .number(0.5)]).map(\.values), parts.map(\.values))
        for alpha in [0.5, 1.0] {
            let parameters: [String: MergeValue] = ["alpha": .number(alpha)]
            let clear = try RegMean().merge(models: fixture.models, parameters: parameters)
            assertSameModel(try mergeFromSums(parts, sums, models: fixture.models, parameters: parameters), clear, tolerance: 1e-6, "α \(alpha)")
        }
        // Two sums per linear plus one packed Gram per stored Gram (key shares query's).
        let roles = parts[0].layout.summands.map(\.role)
        XCTAssertEqual(roles.filter { $0 == .gramTimesWeight }.count, roles.filter { $0 == .diagTimesWeight }.count)
        XCTAssertEqual(roles.filter { $0 == .gram }.count, 4)
        XCTAssertEqual(roles.filter { $0 == .gramTimesWeight }.count, 5)
    }

    func testFixedPointAndMaskedSumsGiveTheClearMerge() throws {
        let fixture = try TestSupport.loadFixture()
        let cases: [(String, [String: MergeValue])] = [
            ("regmean", ["alpha": .number(0.5)]), ("regmean", ["alpha": .number(1.0), "heads": .string("keep")]),
            ("fisher", [:]), ("average", ["heads": .string("per_label")]),
        ]
        for (method, parameters) in cases {
            let clear = try MethodRegistry.method(named: method).merge(models: fixture.models, parameters: parameters)
            let parts = try contributions(fixture.models, method: method, parameters: parameters)
            let sums = try maskedSums(parts, agents: fixture.models.map(\.name), merge: method)
            assertSameModel(try mergeFromSums(parts, sums, models: fixture.models, parameters: parameters), clear, tolerance: 1e-6,
                            "masked \(method) \(parameters)")
        }
    }

    func testWiderRandomLinearsMatchThroughTheMaskedPath() throws {
        // K = 4 linears 24×48 on their own inputs (60 rows each, per-feature scales so the
        // Grams differ), plus a bias; weights unequal. Wide enough that fp64 rounding shows.
        var rng = SplitMix64(seed: 77)
        let (out, d) = (24, 48)
        let models: [Model] = (0..<4).map { i in
            let scales = (0..<d).map { _ in 0.3 + 2 * Double.random(in: 0..<1, using: &rng) }
            let x: [[Double]] = (0..<60).map { _ in (0..<d).map { Double(Float(rng.nextNormal() * scales[$0])) } }
            let tensors = try! NamedTensors([("lin.weight", TestSupport.random([out, d], &rng)), ("lin.bias", TestSupport.random([out], &rng))])
            let stats = NamedStatistics(tensors: try! NamedTensors([("lin.gram", TestSupport.gram(x))]), metadata: ["lin.gram.num_rows": "60"])
            return ("agent-\(i)", tensors, stats, 1 + Double(i) / 2)
        }
        for alpha in [0.5, 1.0] {
            let parameters: [String: MergeValue] = ["alpha": .number(alpha)]
            let clear = try RegMean().merge(models: models, parameters: parameters)
            let parts = try contributions(models, method: "regmean", parameters: parameters)
            assertSameModel(try mergeFromSums(parts, plainSums(parts), models: models, parameters: parameters), clear, tolerance: 1e-6, "random fp64 α \(alpha)")
            let masked = try maskedSums(parts, agents: models.map(\.name), merge: "regmean")
            assertSameModel(try mergeFromSums(parts, masked, models: models, parameters: parameters), clear, tolerance: 1e-6, "random masked α \(alpha)")
        }
    }

    /// Real MiniLM uploads (an aggregator's contribution store: one directory per agent holding
    /// model.safetensors and stats.safetensors), through fixed point and masks, against the clear
    /// merge; prints the figures issue 13 asks for. Minutes in a debug build, so it runs only
    /// when FEDMERGE_SECURE_SUM_STORE names such a store (e.g. .cache/demo/spool/store).
    func testRealMiniLMUploadsThroughTheMaskedPathMatchTheClearMerge() throws {
        guard let store = ProcessInfo.processInfo.environment["FEDMERGE_SECURE_SUM_STORE"] else {
            throw XCTSkip("set FEDMERGE_SECURE_SUM_STORE to an aggregator store of MiniLM uploads")
        }
        let fm = FileManager.default
        var models: [Model] = []
        var clearBytes: [String: (model: Int, gram: Int, fisher: Int)] = [:]
        for agent in try fm.contentsOfDirectory(atPath: store).sorted() {
            guard let fingerprint = try fm.contentsOfDirectory(atPath: store + "/" + agent).sorted().first else { continue }
            let directory = store + "/" + agent + "/" + fingerprint
            let tensors = try ModelFiles.loadModel(directory: directory).tensors
            let statistics = try ModelFiles.loadStatistics(path: directory + "/stats.safetensors", model: agent, kinds: [.gram, .fisher])
            func bytes(_ suffix: String) -> Int { statistics.tensors.names.filter { $0.hasSuffix(suffix) }.reduce(0) { $0 + 4 * statistics.tensors[$1]!.count } }
            let modelBytes = (try fm.attributesOfItem(atPath: directory + "/model.safetensors")[.size] as? Int) ?? 0
            clearBytes[agent] = (modelBytes, bytes(".gram"), bytes(".fisher"))
            models.append((agent, tensors, statistics, 1))
        }
        XCTAssertGreaterThanOrEqual(models.count, 2)
        let runs: [(String, [[String: MergeValue]])] = [("regmean", [["alpha": .number(0.5)], ["alpha": .number(1.0)], [:]]), ("fisher", [[:]]), ("average", [[:]])]
        for (method, parameterSets) in runs {
            let (parts, summandSeconds) = try timed { try contributions(models, method: method, parameters: parameterSets[0]) }
            let (sums, maskSeconds) = try timed { try maskedSums(parts, agents: models.map(\.name), merge: method) }
            let entries = parts[0].layout.summands.reduce(0) { $0 + $1.count }
            for parameters in parameterSets {
                let (clear, clearSeconds) = try timed { try MethodRegistry.method(named: method).merge(models: models, parameters: parameters) }
                let (secure, sumSeconds) = try timed { try mergeFromSums(parts, sums, models: models, parameters: parameters) }
                assertSameModel(secure, clear, tolerance: 1e-6, "MiniLM \(method) \(parameters)")
                print("MiniLM \(method) \(parameters): clear merge \(clearSeconds) s, merge from sums \(sumSeconds) s")
            }
            let agent = models[0].name, clear = clearBytes[agent]!
            let clearUpload = clear.model + (method == "regmean" ? clear.gram : method == "fisher" ? clear.fisher : 0)
            print("MiniLM \(method), \(models.count) agents: \(parts[0].layout.summands.count) summands, \(entries) int64 entries = \(8 * entries) bytes per agent "
                  + "(clear: model \(clear.model) + statistics \(clearUpload - clear.model) = \(clearUpload) bytes); "
                  + "summands \(summandSeconds) s and fixed point + masks + sum + decode \(maskSeconds) s for all agents (debug build)")
        }
    }

    func testMethodsThatNeedPerModelTermsAreRefused() throws {
        let fixture = try TestSupport.loadFixture()
        let m = fixture.models[0]
        for method in ["ties", "task_arithmetic", "mats"] {
            XCTAssertThrowsError(try SumMerge.summands(method: method, parameters: [:], model: m.tensors, statistics: m.statistics, weight: 1, name: m.name)) {
                XCTAssertEqual($0 as? MergeError, .notSummable(method: method, summable: ["average", "fisher", "regmean"]))
            }
        }
    }

    func testSumsThatDoNotFitTheLayoutAreRefused() throws {
        let fixture = try TestSupport.loadFixture()
        let parts = try contributions(fixture.models, method: "average", parameters: [:])
        var sums = plainSums(parts)
        sums[2].removeLast()
        let key = parts[0].layout.summands[2].key
        XCTAssertThrowsError(try mergeFromSums(parts, sums, models: fixture.models, parameters: [:])) {
            XCTAssertEqual($0 as? MergeError, .summandMismatch(what: key, expected: "\(sums[2].count + 1) entries", actual: "\(sums[2].count)"))
        }
    }

    /// Each agent encodes its summands in the round's fixed point and adds its pairwise masks
    /// (real X25519 keys; signatures are FederationTrust's business, tested in SecureSum); the
    /// uploads are summed mod 2^64 and decoded, as the aggregator will.
    private func maskedSums(_ parts: [AgentSummands], agents: [String], merge: String) throws -> [[Double]] {
        let binding = KeyBinding(roundID: "round-test", mergeName: merge)
        let pairs = try agents.map { _ in try AgreementKeyPair() }
        let keys = Dictionary(uniqueKeysWithValues: zip(agents, pairs).map {
            ($0, SignedPublicKey(agent: $0, binding: binding, publicKey: $1.publicKey, certificatePEM: Data(), signature: []))
        })
        let seeds = try zip(agents, pairs).map { try PairwiseSeed.deriveAll(own: $0, keyPair: $1, verified: keys, binding: binding) }
        return try parts[0].layout.summands.indices.map { k in
            let key = parts[0].layout.summands[k].key
            let bounds = try parts.map { try FixedPointScale.reportedBound(for: $0.values[k], tensor: key) }
            let scale = try FixedPointScale(tensor: key, reportedBounds: bounds)
            let uploads = try parts.indices.map { i in
                let fixed = try scale.encode(parts[i].values[k], ownBound: bounds[i], tensor: key)
                return try PairwiseMask.apply(try PairwiseMask.mask(for: agents[i], seeds: seeds[i], stream: UInt64(k), count: fixed.count), to: fixed)
            }
            return try scale.decode(sum: try PairwiseMask.sum(uploads), tensor: key)
        }
    }
}

private extension MergeReport {
    func entries(rule: String) -> [String] { tensors.filter { $0.rule == rule }.map { "\($0.name) \($0.solvePath ?? "")" } }
}
