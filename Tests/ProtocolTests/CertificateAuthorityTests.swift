// CertificateAuthority: certificates the openssl CLI verifies independently, with the
// extensions and names we promise; key files 0600; no silent overwrite; expired on request.

import Foundation
import XCTest
@testable import Protocol

final class CertificateAuthorityTests: XCTestCase {
    func testIssuedCertificatesPassOpenSSLVerifyWithPurposes() throws {
        let dir = TestFiles.temporaryDirectory("ca")
        let ca = try CertificateAuthority.initialize(directory: dir)
        try ca.issue(name: "aggregator", server: true)
        try ca.issue(name: "agent-7", server: false)
        for (name, purpose) in [("aggregator", "sslserver"), ("agent-7", "sslclient")] {
            let result = try TestFiles.run("/usr/bin/openssl", ["verify", "-CAfile", dir + "/ca.pem", "-purpose", purpose, dir + "/\(name).pem"])
            XCTAssertEqual(result.status, 0, result.output)
            XCTAssertTrue(result.output.contains(": OK"), result.output)
        }
        // A client certificate is not a server certificate.
        let misuse = try TestFiles.run("/usr/bin/openssl", ["verify", "-CAfile", dir + "/ca.pem", "-purpose", "sslserver", dir + "/agent-7.pem"])
        XCTAssertNotEqual(misuse.status, 0, misuse.output)
    }

    func testCertificateCarriesNameInCNAndSANAndCAIsMarkedCA() throws {
        let dir = TestFiles.temporaryDirectory("ca")
        let ca = try CertificateAuthority.initialize(directory: dir)
        try ca.issue(name: "agent-x", server: false)
        let leaf = try TestFiles.run("/usr/bin/openssl", ["x509", "-in", dir + "/agent-x.pem", "-noout", "-text"]).output
        XCTAssertTrue(leaf.contains("CN = agent-x") || leaf.contains("CN=agent-x"), leaf)
        XCTAssertTrue(leaf.contains("DNS:agent-x"), leaf)
        XCTAssertTrue(leaf.contains("TLS Web Client Authentication"), leaf)
        XCTAssertTrue(leaf.contains("CA:FALSE"), leaf)
        XCTAssertTrue(leaf.contains("prime256v1") || leaf.contains("P-256"), leaf)
        let root = try TestFiles.run("/usr/bin/openssl", ["x509", "-in", dir + "/ca.pem", "-noout", "-text"]).output
        XCTAssertTrue(root.contains("CA:TRUE"), root)
        XCTAssertTrue(root.contains("Certificate Sign"), root)
    }

    func testKeyFilesAreOwnerOnlyAndLeaveNoTemporaries() throws {
        let dir = TestFiles.temporaryDirectory("ca")
        try CertificateAuthority.initialize(directory: dir).issue(name: "agent-1", server: false)
        for key in ["ca.key", "agent-1.key"] {
            let mode = try FileManager.default.attributesOfItem(atPath: dir + "/" + key)[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o600, key)
        }
        let listing = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(listing, ["agent-1.key", "agent-1.pem", "ca.key", "ca.pem"])
    }

    func testRefusesToOverwriteWithoutForceAndReplacesWithForce() throws {
        let dir = TestFiles.temporaryDirectory("ca")
        let ca = try CertificateAuthority.initialize(directory: dir)
        try ca.issue(name: "agent-1", server: false)
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/agent-1.pem"))
        XCTAssertThrowsError(try ca.issue(name: "agent-1", server: false)) {
            XCTAssertEqual($0 as? AtomicFileError, .exists(path: dir + "/agent-1.pem"))
        }
        XCTAssertThrowsError(try CertificateAuthority.initialize(directory: dir)) {
            XCTAssertEqual($0 as? AtomicFileError, .exists(path: dir + "/ca.pem"))
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/agent-1.pem")), before, "refused issue left the file alone")
        try ca.issue(name: "agent-1", server: false, force: true)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/agent-1.pem")), before)
    }

    func testExplicitValidityMakesAnExpiredCertificateThatOpenSSLRejects() throws {
        let dir = TestFiles.temporaryDirectory("ca")
        let ca = try CertificateAuthority.initialize(directory: dir)
        let now = Date()
        try ca.issue(name: "stale", server: false, notBefore: now.addingTimeInterval(-10 * 86400), notAfter: now.addingTimeInterval(-86400))
        let result = try TestFiles.run("/usr/bin/openssl", ["verify", "-CAfile", dir + "/ca.pem", dir + "/stale.pem"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("expired"), result.output)
    }

    func testBadNamesAndMissingAuthorityGiveTypedErrors() throws {
        let dir = TestFiles.temporaryDirectory("ca")
        XCTAssertThrowsError(try CertificateAuthority(directory: dir)) {
            XCTAssertEqual($0 as? CertificateError, .missingAuthority(directory: dir))
        }
        let ca = try CertificateAuthority.initialize(directory: dir)
        for bad in ["", "../escape", "a/b", ".hidden", "-dash", "ca", String(repeating: "x", count: 64), "space name"] {
            XCTAssertThrowsError(try ca.issue(name: bad, server: false), bad) {
                XCTAssertEqual($0 as? CertificateError, .invalidName(bad))
            }
        }
        // Reloading the CA from disk issues certificates that chain to the same root.
        let reloaded = try CertificateAuthority(directory: dir)
        try reloaded.issue(name: "later", server: false)
        XCTAssertEqual(try TestFiles.run("/usr/bin/openssl", ["verify", "-CAfile", dir + "/ca.pem", dir + "/later.pem"]).status, 0)
    }
}
