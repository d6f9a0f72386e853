// WireForms: a signed key survives SECURE_KEY's base64/PEM form and the real message codec and
// still verifies; a key altered on the wire does not; revealed seeds round-trip through hex and
// malformed hex is refused naming the survivor.

import Foundation
import XCTest
import Protocol
@testable import SecureSum

final class WireFormsTests: XCTestCase {
    func testASignedKeyCrossesTheWireAndStillVerifies() throws {
        let federation = try TestFederation(agents: ["agent-a"])
        defer { federation.remove() }
        let binding = KeyBinding(roundID: "12", mergeName: "secure-regmean")
        let signed = try SignedPublicKey(signing: try AgreementKeyPair(), as: try federation.identity("agent-a"), for: binding)
        let codec = MessageCodec()
        guard case .secureKeys(let relayed) = try codec.decode(codec.encode(.secureKeys(SecureKeys(round: 12, merge: "secure-regmean", keys: [signed.wire(round: 12)])))) else {
            return XCTFail("not SECURE_KEYS")
        }
        let received = try SignedPublicKey(wire: relayed.keys[0])
        XCTAssertEqual(received, signed)
        XCTAssertNoThrow(try federation.trust.verify(received, for: binding))

        var altered = relayed.keys[0]
        var key = [UInt8](Data(base64Encoded: altered.publicKey)!)
        key[0] ^= 1
        altered.publicKey = Data(key).base64EncodedString()
        XCTAssertThrowsError(try federation.trust.verify(try SignedPublicKey(wire: altered), for: binding)) {
            XCTAssertEqual($0 as? SecureSumError, .badSignature(agent: "agent-a"))
        }
        altered.publicKey = "not base64!"
        XCTAssertThrowsError(try SignedPublicKey(wire: altered)) {
            XCTAssertEqual($0 as? SecureSumError, .malformedPublicKey(agent: "agent-a", reason: "publicKey is not base64"))
        }
    }

    func testRevealedSeedsRoundTripThroughHexAndBadHexIsRefused() throws {
        let seed = PairwiseSeed(lower: "agent-a", higher: "agent-c", bytes: (0..<32).map { UInt8($0 * 7 & 0xFF) })
        XCTAssertEqual(try PairwiseSeed(revealedHex: seed.hex, survivor: "agent-c", dropped: "agent-a"), seed)
        XCTAssertThrowsError(try PairwiseSeed(revealedHex: String(seed.hex.dropLast()), survivor: "agent-c", dropped: "agent-a")) {
            guard case .badReveal(survivor: "agent-c", dropped: "agent-a", _)? = $0 as? SecureSumError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try PairwiseSeed(revealedHex: String(repeating: "zz", count: 32), survivor: "agent-c", dropped: "agent-a")) {
            XCTAssertEqual($0 as? SecureSumError, .badReveal(survivor: "agent-c", dropped: "agent-a", reason: "seed is not hex"))
        }
    }
}
