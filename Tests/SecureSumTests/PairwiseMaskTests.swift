// PairwiseMask: for K = 3…5 agents with real keys from a real CA, the masked uploads sum to
// the fixed-point sum exactly; one masked upload of a Gram is byte-uniform (chi-square) and
// uncorrelated with the Gram; after a dropout the revealed seeds recover the survivors' sum
// exactly, and without them the range check refuses the sum.

import Foundation
import XCTest
import RoundContract
@testable import SecureSum

final class PairwiseMaskTests: XCTestCase {
    var federation: TestFederation!
    let binding = KeyBinding(roundID: "round-3", mergeName: "regmean")

    override func setUpWithError() throws {
        federation = try TestFederation(agents: (1...5).map { "agent-\($0)" })
    }
    override func tearDown() { federation?.remove() }

    private func randomTerms(_ agents: Int, count: Int, seed: UInt64) -> [[Double]] {
        var rng = SeededGenerator(seed: seed)
        return (0..<agents).map { _ in (0..<count).map { _ in rng.gaussian() } }
    }

    func testMaskedUploadsSumToTheFixedPointSumExactly() throws {
        for k in 3...5 {
            let agents = try exchangedAgents(k, federation: federation, binding: binding)
            let terms = randomTerms(k, count: 3001, seed: UInt64(k))
            let bounds = try terms.map { try FixedPointScale.reportedBound(for: $0, tensor: "w") }
            let scale = try FixedPointScale(tensor: "w", reportedBounds: bounds)
            let fixed = try terms.indices.map { try scale.encode(terms[$0], ownBound: bounds[$0], tensor: "w") }
            let uploads = try agents.indices.map { try agents[$0].upload(fixed[$0], stream: 4) }
            for i in uploads.indices { XCTAssertNotEqual(uploads[i], fixed[i]) }
            XCTAssertEqual(try PairwiseMask.sum(uploads), try PairwiseMask.sum(fixed), "K=\(k)")
            // And the masks really are there: dropping any one upload leaves garbage.
            XCTAssertNotEqual(try PairwiseMask.sum(Array(uploads.dropFirst())), try PairwiseMask.sum(Array(fixed.dropFirst())))
        }
    }

    func testMaskedGramIsByteUniformAndUncorrelatedWithTheGram() throws {
        let agents = try exchangedAgents(3, federation: federation, binding: binding)
        // A structured Gram (d = 1024): a few strong directions plus a large diagonal, like
        // layer inputs. 524 800 packed entries: |corr| of independent data has sd ≈ 0.0014.
        let d = 1024
        var rng = SeededGenerator(seed: 9)
        let directions = (0..<6).map { _ in (0..<d).map { _ in rng.gaussian() } }
        var full = [Double](repeating: 0, count: d * d)
        for r in 0..<d {
            for c in r..<d {
                var g = r == c ? 50.0 : 0
                for v in directions { g += v[r] * v[c] }
                full[r * d + c] = g; full[c * d + r] = g
            }
        }
        let gram = try SymmetricPacking.pack(full, dimension: d)
        let bound = try FixedPointScale.reportedBound(for: gram, tensor: "gram")
        let scale = try FixedPointScale(tensor: "gram", reportedBounds: [bound, bound, bound])
        let fixed = try scale.encode(gram, ownBound: bound, tensor: "gram")
        let masked = try agents[0].upload(fixed, stream: 0)

        // The same statistics on the unmasked words fail, so these checks can fail.
        XCTAssertGreaterThan(chiSquareOfBytes(fixed), 10_000)
        XCTAssertGreaterThan(abs(correlation(fixed, gram)), 0.99)

        // 255 degrees of freedom: P(χ² > 377) ≈ 1e-6 for uniform bytes.
        let chi = chiSquareOfBytes(masked)
        XCTAssertLessThan(chi, 377, "χ² of the masked Gram's bytes")
        let r = correlation(masked, gram)
        XCTAssertLessThanOrEqual(abs(r), 0.01, "corr(masked, Gram)")
        print("masked Gram d=\(d): chi-square \(chi) (255 dof), corr \(r)")
    }

    func testDroppedAgentsMasksAreRemovedWithTheSurvivorsRevealedSeeds() throws {
        let agents = try exchangedAgents(4, federation: federation, binding: binding)
        let terms = randomTerms(4, count: 999, seed: 21)
        let bounds = try terms.map { try FixedPointScale.reportedBound(for: $0, tensor: "w") }
        let scale = try FixedPointScale(tensor: "w", reportedBounds: bounds)
        let fixed = try terms.indices.map { try scale.encode(terms[$0], ownBound: bounds[$0], tensor: "w") }
        // agent-2 drops after the key exchange: its upload never arrives.
        let dropped = "agent-2"
        let survivors = agents.filter { $0.name != dropped }
        let survivorIndices = agents.indices.filter { agents[$0].name != dropped }
        var sum = try PairwiseMask.sum(try survivorIndices.map { try agents[$0].upload(fixed[$0], stream: 7) })
        let expected = try PairwiseMask.sum(survivorIndices.map { fixed[$0] })
        XCTAssertNotEqual(sum, expected)
        XCTAssertThrowsError(try scale.decode(sum: sum, tensor: "w"), "a leftover mask must not decode") {
            guard case .sumOutOfRange? = $0 as? SecureSumError else { return XCTFail("\($0)") }
        }
        let revealed = Dictionary(uniqueKeysWithValues: survivors.map { ($0.name, $0.seeds[dropped]!) })
        try PairwiseMask.removeDropped(dropped, from: &sum, survivors: survivors.map(\.name), revealed: revealed, stream: 7)
        XCTAssertEqual(sum, expected)
        let decoded = try scale.decode(sum: sum, tensor: "w")
        for k in 0..<999 {
            let exact = survivorIndices.reduce(0.0) { $0 + terms[$1][k] }
            let magnitude = survivorIndices.reduce(0.0) { $0 + abs(terms[$1][k]) }
            // Three half-quanta of rounding plus fp64's own rounding of the reference sum.
            XCTAssertEqual(decoded[k], exact, accuracy: 1.5 / FixedPointScale.power(scale.fractionBits) + 4 * magnitude.ulp)
        }
    }

    func testARevealForTheWrongPairIsRefused() throws {
        let agents = try exchangedAgents(3, federation: federation, binding: binding)
        var sum = [UInt64](repeating: 0, count: 4)
        // agent-1 offers the seed it shares with agent-3 while agent-2 is the one that dropped.
        XCTAssertThrowsError(try PairwiseMask.removeDropped("agent-2", from: &sum, survivors: ["agent-1", "agent-3"],
                                                            revealed: ["agent-1": agents[0].seeds["agent-3"]!, "agent-3": agents[2].seeds["agent-2"]!], stream: 0)) {
            guard case .badReveal(survivor: "agent-1", dropped: "agent-2", _)? = $0 as? SecureSumError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try PairwiseMask.removeDropped("agent-2", from: &sum, survivors: ["agent-1", "agent-3"],
                                                            revealed: ["agent-3": agents[2].seeds["agent-2"]!], stream: 0)) {
            guard case .badReveal(survivor: "agent-1", dropped: "agent-2", reason: "no seed revealed")? = $0 as? SecureSumError else { return XCTFail("\($0)") }
        }
    }

    // MARK: statistics

    /// Pearson's χ² of the words' little-endian bytes against the uniform distribution on 0…255.
    private func chiSquareOfBytes(_ words: [UInt64]) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for w in words { for b in 0..<8 { counts[Int(truncatingIfNeeded: (w >> (8 * UInt64(b))) & 0xFF)] += 1 } }
        let expected = Double(words.count * 8) / 256
        return counts.reduce(0.0) { $0 + pow(Double($1) - expected, 2) / expected }
    }

    /// Pearson correlation of the words read as int64 with the true values.
    private func correlation(_ words: [UInt64], _ truth: [Double]) -> Double {
        let x = words.map { Double(Int64(bitPattern: $0)) }
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = truth.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            let dx = x[i] - mx, dy = truth[i] - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        return sxy / (sxx * syy).squareRoot()
    }
}
