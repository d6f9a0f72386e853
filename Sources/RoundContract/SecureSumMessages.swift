// The headers of a secure merge's extra exchange (issue 13; DESIGN.md §8): each member's
// signed X25519 key, the keys relayed to every member, the per-summand bounds and the scale
// the aggregator fixes from them, and the seed reveal after a dropout. Binary values travel
// as base64 (keys, signatures) or hex (seeds) inside the JSON header.

/// Agent → aggregator: my X25519 public key for merge `merge` (wire id `round`), signed with
/// my certificate key over (round id, merge name, agent, key).
public struct SecureKey: Codable, Sendable, Equatable {
    public var round: Int
    public var merge: String
    public var agent: String
    /// Raw X25519 public key (32 bytes), base64.
    public var publicKey: String
    /// The agent's certificate, PEM.
    public var certificate: String
    /// ECDSA-SHA256 signature (DER), base64.
    public var signature: String

    public init(round: Int, merge: String, agent: String, publicKey: String, certificate: String, signature: String) {
        self.round = round; self.merge = merge; self.agent = agent
        self.publicKey = publicKey; self.certificate = certificate; self.signature = signature
    }
}

/// Aggregator → each member: every member's SecureKey, relayed untouched; members verify each.
public struct SecureKeys: Codable, Sendable, Equatable {
    public var round: Int
    public var merge: String
    public var keys: [SecureKey]
    public init(round: Int, merge: String, keys: [SecureKey]) { self.round = round; self.merge = merge; self.keys = keys }
}

/// Agent → aggregator: per summand (in layout order), the bound it will encode within as a
/// power-of-two exponent e (bound 2^e), or nil for an all-zero summand. `layoutDigest`
/// (SHA-256 hex of the summand layout) lets the aggregator check all members agree.
public struct SecureBounds: Codable, Sendable, Equatable {
    public var round: Int
    public var merge: String
    public var layoutDigest: String
    public var boundExponents: [Int?]
    public init(round: Int, merge: String, layoutDigest: String, boundExponents: [Int?]) {
        self.round = round; self.merge = merge; self.layoutDigest = layoutDigest; self.boundExponents = boundExponents
    }
}

/// Aggregator → each member: the fixed point of every summand — f and the largest bound B
/// (as an exponent) over the `agents` whose masks the sums hold. Members check each scale is
/// safe for K = agents.count before encoding.
public struct SecureScale: Codable, Sendable, Equatable {
    public var round: Int
    public var merge: String
    public var layoutDigest: String
    public var agents: [String]
    public var fractionBits: [Int]
    public var boundExponents: [Int?]
    public init(round: Int, merge: String, layoutDigest: String, agents: [String], fractionBits: [Int], boundExponents: [Int?]) {
        self.round = round; self.merge = merge; self.layoutDigest = layoutDigest; self.agents = agents
        self.fractionBits = fractionBits; self.boundExponents = boundExponents
    }
}

/// Aggregator → each survivor: these members dropped after the key exchange; reveal the
/// seeds you share with them (and nothing else).
public struct RevealRequest: Codable, Sendable, Equatable {
    public var round: Int
    public var merge: String
    public var dropped: [String]
    public init(round: Int, merge: String, dropped: [String]) { self.round = round; self.merge = merge; self.dropped = dropped }
}

/// Survivor → aggregator: the pairwise seed (hex) shared with each dropped member.
public struct Reveal: Codable, Sendable, Equatable {
    public var round: Int
    public var merge: String
    public var agent: String
    public var seeds: [String: String]
    public init(round: Int, merge: String, agent: String, seeds: [String: String]) {
        self.round = round; self.merge = merge; self.agent = agent; self.seeds = seeds
    }
}

/// In WELCOME for a member of a secure merge: every method of the merge with its parameters
/// (the agent computes its summands itself), and the name of the masked upload.
public struct SecurePlan: Codable, Sendable, Equatable {
    public struct Method: Codable, Sendable, Equatable {
        public var label: String
        public var mergeMethod: String
        /// The method's parameters as a JSON object (the merge file's values).
        public var parameters: String
        public init(label: String, mergeMethod: String, parameters: String) {
            self.label = label; self.mergeMethod = mergeMethod; self.parameters = parameters
        }
    }
    public var methods: [Method]
    public var upload: String
    public init(methods: [Method], upload: String) { self.methods = methods; self.upload = upload }

    /// The masked upload's file name for merge `merge` (a portable name, so a portable file name).
    public static func uploadName(merge: String) -> String { "masked-\(merge).bin" }
}
