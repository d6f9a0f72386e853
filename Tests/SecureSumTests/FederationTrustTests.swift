// FederationTrust + SignedPublicKey: keys signed by federation agents verify; a key whose
// certificate another CA issued, a key claimed for another agent, a tampered key or binding,
// and a key of another round are each refused with the error that names the fault.

import Foundation
import XCTest
import Protocol
@testable import SecureSum

final class FederationTrustTests: XCTestCase {
    let binding = KeyBinding(roundID: "round-7", mergeName: "regmean-a09")
    var federation: TestFederation!

    override func setUpWithError() throws {
        federation = try TestFederation(agents: ["agent-a", "agent-b", "agent-c"])
    }
    override func tearDown() { federation?.remove() }

    private func signed(_ agent: String, binding: KeyBinding? = nil) throws -> SignedPublicKey {
        try SignedPublicKey(signing: try AgreementKeyPair(), as: try federation.identity(agent), for: binding ?? self.binding)
    }

    func testKeysOfFederationAgentsVerifyForTheirBinding() throws {
        let keys = try ["agent-a", "agent-b", "agent-c"].map { try signed($0) }
        let verified = try federation.trust.verifyAll(keys, for: binding)
        XCTAssertEqual(Set(verified.keys), ["agent-a", "agent-b", "agent-c"])
        XCTAssertEqual(verified["agent-b"]?.publicKey.count, 32)
    }

    func testKeySignedWithACertificateFromAnotherCAIsRefused() throws {
        let rogue = try TestFederation(agents: ["agent-b"], label: "rogue-ca")
        defer { rogue.remove() }
        // Same agent name, a valid certificate and a correct signature — but not our CA's.
        let forged = try SignedPublicKey(signing: try AgreementKeyPair(), as: try rogue.identity("agent-b"), for: binding)
        XCTAssertThrowsError(try federation.trust.verify(forged, for: binding)) { error in
            guard case .untrustedCertificate(let agent, let reason)? = error as? SecureSumError else { return XCTFail("\(error)") }
            XCTAssertEqual(agent, "agent-b")
            XCTAssertTrue(reason.contains("local issuer"), reason)
        }
        // The rogue CA itself accepts it: the refusal is about the issuer, not the signature.
        XCTAssertNoThrow(try rogue.trust.verify(forged, for: binding))
    }

    func testKeyClaimedForAnotherAgentIsRefused() throws {
        // agent-c (or an aggregator holding agent-c's files) signs a key and claims it is agent-b's.
        let cKey = try signed("agent-c")
        let impostor = try AgreementKeyPair()
        let cIdentity = try federation.identity("agent-c")
        let claim = SignedPublicKey.signedBytes(agent: "agent-b", binding: binding, publicKey: impostor.publicKey)
        let withOwnCertificate = SignedPublicKey(agent: "agent-b", binding: binding, publicKey: impostor.publicKey,
                                                 certificatePEM: cKey.certificatePEM, signature: try cIdentity.sign(claim))
        XCTAssertThrowsError(try federation.trust.verify(withOwnCertificate, for: binding)) {
            XCTAssertEqual($0 as? SecureSumError, .certificateNameMismatch(agent: "agent-b", certificateName: "agent-c"))
        }
        // Same claim carrying agent-b's real certificate: the signature is not agent-b's.
        let bCertificate = try federation.identity("agent-b").certificatePEM
        let withVictimCertificate = SignedPublicKey(agent: "agent-b", binding: binding, publicKey: impostor.publicKey,
                                                    certificatePEM: bCertificate, signature: try cIdentity.sign(claim))
        XCTAssertThrowsError(try federation.trust.verify(withVictimCertificate, for: binding)) {
            XCTAssertEqual($0 as? SecureSumError, .badSignature(agent: "agent-b"))
        }
    }

    func testTamperedKeyOrBindingIsRefused() throws {
        let good = try signed("agent-a")
        var swappedKey = good
        swappedKey.publicKey = try AgreementKeyPair().publicKey   // the aggregator substitutes its own key
        XCTAssertThrowsError(try federation.trust.verify(swappedKey, for: binding)) {
            XCTAssertEqual($0 as? SecureSumError, .badSignature(agent: "agent-a"))
        }
        // A key of round-6 relabelled as round-7: the label matches, the signature does not.
        let old = try signed("agent-a", binding: KeyBinding(roundID: "round-6", mergeName: "regmean-a09"))
        var relabelled = old
        relabelled.binding = binding
        XCTAssertThrowsError(try federation.trust.verify(relabelled, for: binding)) {
            XCTAssertEqual($0 as? SecureSumError, .badSignature(agent: "agent-a"))
        }
        var flipped = good
        flipped.signature[flipped.signature.count / 2] ^= 0x01
        XCTAssertThrowsError(try federation.trust.verify(flipped, for: binding)) {
            XCTAssertEqual($0 as? SecureSumError, .badSignature(agent: "agent-a"))
        }
    }

    func testKeyOfAnotherRoundOrMergeIsRefusedByItsBinding() throws {
        let otherRound = KeyBinding(roundID: "round-6", mergeName: "regmean-a09")
        let otherMerge = KeyBinding(roundID: "round-7", mergeName: "fisher")
        for other in [otherRound, otherMerge] {
            let key = try signed("agent-a", binding: other)
            XCTAssertThrowsError(try federation.trust.verify(key, for: binding)) {
                XCTAssertEqual($0 as? SecureSumError, .wrongBinding(agent: "agent-a", expected: binding, got: other))
            }
        }
    }

    func testTwoKeysForOneAgentAndShortKeysAreRefused() throws {
        XCTAssertThrowsError(try federation.trust.verifyAll([try signed("agent-a"), try signed("agent-a")], for: binding)) {
            XCTAssertEqual($0 as? SecureSumError, .duplicateAgent("agent-a"))
        }
        var short = try signed("agent-a")
        short.publicKey.removeLast()
        XCTAssertThrowsError(try federation.trust.verify(short, for: binding)) {
            guard case .malformedPublicKey("agent-a", _)? = $0 as? SecureSumError else { return XCTFail("\($0)") }
        }
    }

    func testSigningIdentityRefusesAKeyOfAnotherCertificate() throws {
        let certificate = try Data(contentsOf: URL(fileURLWithPath: federation.directory + "/agent-a.pem"))
        let otherKey = try Data(contentsOf: URL(fileURLWithPath: federation.directory + "/agent-b.key"))
        XCTAssertThrowsError(try SigningIdentity(certificatePEM: certificate, privateKeyPEM: otherKey)) {
            XCTAssertEqual($0 as? SecureSumError, .keyDoesNotMatchCertificate(agent: "agent-a"))
        }
    }
}
