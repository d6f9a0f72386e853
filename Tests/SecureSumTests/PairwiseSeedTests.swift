// PairwiseSeed: both agents of a pair derive one seed, a third party's key gives another,
// the seed changes with the round and the merge, and the HKDF under it matches RFC 5869.

import Foundation
import XCTest
@testable import SecureSum

final class PairwiseSeedTests: XCTestCase {
    let binding = KeyBinding(roundID: "round-1", mergeName: "average")

    func testBothSidesDeriveTheSameSeedAndAThirdPartyCannot() throws {
        let federation = try TestFederation(agents: ["agent-a", "agent-b", "agent-c"])
        defer { federation.remove() }
        let a = try TestAgent("agent-a", federation: federation, binding: binding)
        let b = try TestAgent("agent-b", federation: federation, binding: binding)
        let c = try TestAgent("agent-c", federation: federation, binding: binding)
        let ab = try PairwiseSeed.derive(own: "agent-a", keyPair: a.keyPair, peer: b.signed, binding: binding)
        let ba = try PairwiseSeed.derive(own: "agent-b", keyPair: b.keyPair, peer: a.signed, binding: binding)
        XCTAssertEqual(ab, ba)
        XCTAssertEqual(ab.lower, "agent-a")
        XCTAssertEqual(ab.higher, "agent-b")
        XCTAssertEqual(ab.bytes.count, 32)
        // c holds both public keys (as the aggregator does) but only its own private key.
        let cb = try PairwiseSeed.derive(own: "agent-c", keyPair: c.keyPair, peer: b.signed, binding: binding)
        XCTAssertNotEqual(cb.bytes, ab.bytes)
        // Same key pairs, another merge of the same round: an unrelated seed.
        let otherMerge = KeyBinding(roundID: "round-1", mergeName: "fisher")
        let abFisher = try PairwiseSeed.derive(own: "agent-a", keyPair: a.keyPair, peer: b.signed, binding: otherMerge)
        XCTAssertNotEqual(abFisher.bytes, ab.bytes)
    }

    func testHKDFMatchesRFC5869TestCase3() throws {
        // RFC 5869 A.3: SHA-256, IKM = 22 × 0x0b, no salt, no info, L = 42.
        let okm = try hkdfSHA256(secret: [UInt8](repeating: 0x0b, count: 22), info: [], length: 42)
        XCTAssertEqual(hex(okm), "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    }

    func testLowOrderPeerKeyIsRefusedNamingThePeer() throws {
        let own = try AgreementKeyPair()
        // u = 0 is a low-order point: X25519 would give the all-zero secret.
        XCTAssertThrowsError(try own.sharedSecret(with: [UInt8](repeating: 0, count: 32), peer: "agent-z")) {
            guard case .malformedPublicKey("agent-z", _)? = $0 as? SecureSumError else { return XCTFail("\($0)") }
        }
    }

    func testAgentOrderIsBytewise() {
        XCTAssertTrue(AgentOrder.precedes("agent-10", "agent-9"))
        XCTAssertTrue(AgentOrder.precedes("B", "a"))
        XCTAssertFalse(AgentOrder.precedes("a", "a"))
    }
}
