// RoundScale: the fixed-point rule in its wire form. Each agent reports one power-of-two bound
// per summand (SECURE_BOUNDS, as exponents); the aggregator fixes every summand's scale from
// them by FixedPointScale's rule (SECURE_SCALE); each agent recomputes that rule and refuses a
// scale that differs, is unsafe, or sits below its own bound — so a lying aggregator can
// neither make a sum wrap nor quietly coarsen it.

import RoundContract

public enum RoundScale {
    /// What an agent sends: the bound of each summand (in layout order) as an exponent e
    /// (bound 2^e) or nil for an all-zero summand.
    public static func bounds(round: Int, merge: String, layoutDigest: String, summands: [[Double]]) throws -> SecureBounds {
        let exponents = try summands.enumerated().map { k, values -> Int? in
            let bound = try FixedPointScale.reportedBound(for: values, tensor: "summand \(k)")
            return bound == 0 ? nil : Int(bound.exponent)
        }
        return SecureBounds(round: round, merge: merge, layoutDigest: layoutDigest, boundExponents: exponents)
    }

    /// The aggregator's SECURE_SCALE for the agents whose bounds it holds (those agents'
    /// masks are the ones in the sums). Refuses bounds of another layout, naming the agent.
    public static func fix(round: Int, merge: String, bounds: [String: SecureBounds]) throws -> SecureScale {
        let agents = bounds.keys.sorted(by: AgentOrder.precedes)
        guard let first = agents.first, let reference = bounds[first] else { throw SecureSumError.notAMember(agent: "") }
        for agent in agents {
            let b = bounds[agent]!
            guard b.layoutDigest == reference.layoutDigest, b.boundExponents.count == reference.boundExponents.count else {
                throw SecureSumError.layoutMismatch(agent: agent, expected: "\(reference.layoutDigest) (\(reference.boundExponents.count) summands)",
                                                    got: "\(b.layoutDigest) (\(b.boundExponents.count) summands)")
            }
        }
        var fractionBits: [Int] = [], largest: [Int?] = []
        for k in reference.boundExponents.indices {
            let exponents = agents.map { bounds[$0]!.boundExponents[k] }
            let scale = try FixedPointScale(tensor: "summand \(k)", reportedBounds: try exponents.map { try bound($0, index: k) })
            fractionBits.append(scale.fractionBits)
            largest.append(exponents.compactMap { $0 }.max())
        }
        return SecureScale(round: round, merge: merge, layoutDigest: reference.layoutDigest, agents: agents,
                           fractionBits: fractionBits, boundExponents: largest)
    }

    /// An agent's check of the SECURE_SCALE it received against its own SECURE_BOUNDS; the
    /// scales to encode its summands with.
    public static func accept(_ scale: SecureScale, own: SecureBounds, agent: String) throws -> [FixedPointScale] {
        guard scale.agents.contains(agent) else { throw SecureSumError.notAMember(agent: agent) }
        guard scale.round == own.round, scale.merge == own.merge, scale.layoutDigest == own.layoutDigest,
              scale.fractionBits.count == own.boundExponents.count, scale.boundExponents.count == own.boundExponents.count else {
            throw SecureSumError.layoutMismatch(agent: agent, expected: "\(own.layoutDigest) (\(own.boundExponents.count) summands)",
                                                got: "\(scale.layoutDigest) (\(scale.fractionBits.count) scales, \(scale.boundExponents.count) bounds)")
        }
        let agents = scale.agents.count
        return try own.boundExponents.indices.map { k in
            let roundBound = try bound(scale.boundExponents[k], index: k), ownBound = try bound(own.boundExponents[k], index: k)
            guard ownBound <= roundBound else {
                throw SecureSumError.scaleRefused(index: k, reason: "its bound \(roundBound) is below this agent's \(ownBound)")
            }
            let rule = try FixedPointScale(tensor: "summand \(k)", reportedBounds: [Double](repeating: roundBound, count: agents))
            guard scale.fractionBits[k] == rule.fractionBits else {
                throw SecureSumError.scaleRefused(index: k, reason: "f = \(scale.fractionBits[k]), the rule gives \(rule.fractionBits) for bound \(roundBound) and \(agents) agents")
            }
            return rule
        }
    }

    /// 2^e, or 0 for nil; exponents outside fp64's range are refused.
    private static func bound(_ exponent: Int?, index: Int) throws -> Double {
        guard let exponent else { return 0 }
        guard (-1074...1023).contains(exponent) else { throw SecureSumError.scaleRefused(index: index, reason: "bound exponent \(exponent) is outside fp64") }
        return FixedPointScale.power(exponent)
    }
}
