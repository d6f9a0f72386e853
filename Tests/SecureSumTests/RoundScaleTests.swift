// RoundScale: three agents' SECURE_BOUNDS give one SECURE_SCALE every agent accepts and sums
// decode under; a scale with another f, a bound below an agent's own, another layout, or
// without the agent is refused by name.

import XCTest
@testable import SecureSum

final class RoundScaleTests: XCTestCase {
    let digest = String(repeating: "ab", count: 32)

    private func summands(_ seed: UInt64) -> [[Double]] {
        var rng = SeededGenerator(seed: seed)
        return [(0..<50).map { _ in rng.gaussian() * Double(seed) }, (0..<20).map { _ in rng.gaussian() / 1000 }, [Double](repeating: 0, count: 5)]
    }

    func testAgentsAcceptTheScaleTheAggregatorFixesAndTheirSumsDecode() throws {
        let agents = ["agent-b", "agent-a", "agent-c"]
        let parts = Dictionary(uniqueKeysWithValues: agents.enumerated().map { ($1, summands(UInt64($0 + 1))) })
        let bounds = try parts.mapValues { try RoundScale.bounds(round: 4, merge: "m", layoutDigest: digest, summands: $0) }
        XCTAssertEqual(bounds["agent-a"]?.boundExponents[2], .some(nil), "an all-zero summand reports no exponent")
        let scale = try RoundScale.fix(round: 4, merge: "m", bounds: bounds)
        XCTAssertEqual(scale.agents, ["agent-a", "agent-b", "agent-c"])
        var sums = [[UInt64]](repeating: [], count: 3)
        for agent in agents {
            let scales = try RoundScale.accept(scale, own: bounds[agent]!, agent: agent)
            for k in 0..<3 {
                let own = bounds[agent]!.boundExponents[k].map { FixedPointScale.power($0) } ?? 0
                let words = try scales[k].encode(parts[agent]![k], ownBound: own, tensor: "s\(k)")
                sums[k] = sums[k].isEmpty ? words : zip(sums[k], words).map { $0 &+ $1 }
            }
        }
        let scales = try RoundScale.accept(scale, own: bounds["agent-a"]!, agent: "agent-a")
        for k in 0..<3 {
            let decoded = try scales[k].decode(sum: sums[k], tensor: "s\(k)")
            for i in decoded.indices {
                let exact = agents.reduce(0.0) { $0 + parts[$1]![k][i] }
                let magnitude = agents.reduce(0.0) { $0 + abs(parts[$1]![k][i]) }
                XCTAssertEqual(decoded[i], exact, accuracy: 1.5 / FixedPointScale.power(scales[k].fractionBits) + 4 * magnitude.ulp)
            }
        }
    }

    func testAnAlteredOrForeignScaleIsRefused() throws {
        let bounds = try ["agent-a": summands(1), "agent-b": summands(2)].mapValues {
            try RoundScale.bounds(round: 4, merge: "m", layoutDigest: digest, summands: $0)
        }
        let scale = try RoundScale.fix(round: 4, merge: "m", bounds: bounds)
        let own = bounds["agent-a"]!

        var finer = scale                       // one more bit: could wrap
        finer.fractionBits[0] += 1
        var coarser = scale                     // one bit less: safe, but not the rule
        coarser.fractionBits[1] -= 1
        for (altered, index) in [(finer, 0), (coarser, 1)] {
            XCTAssertThrowsError(try RoundScale.accept(altered, own: own, agent: "agent-a")) {
                guard case .scaleRefused(index: index, let reason)? = $0 as? SecureSumError else { return XCTFail("\($0)") }
                XCTAssertTrue(reason.contains("the rule gives"), reason)
            }
        }
        var lowered = scale                     // B below agent-b's bound (b's values are larger)
        lowered.boundExponents[0] = own.boundExponents[0]! - 3
        XCTAssertThrowsError(try RoundScale.accept(lowered, own: bounds["agent-b"]!, agent: "agent-b")) {
            guard case .scaleRefused(index: 0, let reason)? = $0 as? SecureSumError else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("below this agent's"), reason)
        }
        var without = scale
        without.agents = ["agent-b"]
        XCTAssertThrowsError(try RoundScale.accept(without, own: own, agent: "agent-a")) {
            XCTAssertEqual($0 as? SecureSumError, .notAMember(agent: "agent-a"))
        }
        var otherLayout = bounds
        otherLayout["agent-b"]!.layoutDigest = String(repeating: "cd", count: 32)
        XCTAssertThrowsError(try RoundScale.fix(round: 4, merge: "m", bounds: otherLayout)) {
            guard case .layoutMismatch(agent: "agent-b", _, _)? = $0 as? SecureSumError else { return XCTFail("\($0)") }
        }
    }
}
