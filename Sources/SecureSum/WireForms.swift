// The wire forms of secure summation's values: a SignedPublicKey as the SecureKey header
// (base64 key and signature, PEM certificate) and a revealed seed as hex. Decoding refuses
// malformed fields by name; FederationTrust.verify still judges every key that decodes.

import Foundation
import RoundContract

extension SignedPublicKey {
    /// From a relayed SECURE_KEY header (bound to its round id and merge name).
    public init(wire: SecureKey) throws {
        guard let key = Data(base64Encoded: wire.publicKey) else {
            throw SecureSumError.malformedPublicKey(agent: wire.agent, reason: "publicKey is not base64")
        }
        guard let signature = Data(base64Encoded: wire.signature) else { throw SecureSumError.badSignature(agent: wire.agent) }
        self.init(agent: wire.agent, binding: KeyBinding(roundID: String(wire.round), mergeName: wire.merge), publicKey: [UInt8](key),
                  certificatePEM: Data(wire.certificate.utf8), signature: [UInt8](signature))
    }

    /// The SECURE_KEY header; `round` is the merge's wire id, which the binding's round id spells.
    public func wire(round: Int) -> SecureKey {
        SecureKey(round: round, merge: binding.mergeName, agent: agent, publicKey: Data(publicKey).base64EncodedString(),
                  certificate: String(decoding: certificatePEM, as: UTF8.self), signature: Data(signature).base64EncodedString())
    }
}

extension PairwiseSeed {
    /// The seed as REVEAL carries it: 64 lowercase hex digits.
    public var hex: String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// A seed `survivor` revealed for its pair with `dropped`.
    public init(revealedHex text: String, survivor: String, dropped: String) throws {
        let digits = Array(text.utf8)
        guard digits.count == 64 else { throw SecureSumError.badReveal(survivor: survivor, dropped: dropped, reason: "seed is \(digits.count) characters, expected 64 hex digits") }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.nibble(digits[i]), let low = Self.nibble(digits[i + 1]) else {
                throw SecureSumError.badReveal(survivor: survivor, dropped: dropped, reason: "seed is not hex")
            }
            bytes.append(high << 4 | low)
        }
        let survivorFirst = AgentOrder.precedes(survivor, dropped)
        self.init(lower: survivorFirst ? survivor : dropped, higher: survivorFirst ? dropped : survivor, bytes: bytes)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
