// TLSConfiguration loading with real files from `fedmerge certs`-style issuance: each way a
// daemon's own credentials can be wrong is a distinct TLSCredentialError naming the file.

import Foundation
import XCTest
@testable import Protocol

final class TLSConfigurationTests: ProtocolTestCase {
    private func expect(_ configuration: TLSConfiguration, _ expected: TLSCredentialError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try configuration.check(), file: file, line: line) { error in
            XCTAssertEqual(error as? TLSCredentialError, expected, "\(error)", file: file, line: line)
        }
        // The daemons build the same context when they start.
        XCTAssertThrowsError(try SecureServer(endpoint: "tcp://127.0.0.1:*", tls: configuration, allow: { _ in true }), file: file, line: line) { error in
            XCTAssertEqual(error as? TLSCredentialError, expected, file: file, line: line)
        }
    }

    func testAKeyReadableByOthersIsRefusedLikeSSHDoes() throws {
        let federation = try TestFederation()
        let tls = federation.serverTLS
        let key = try XCTUnwrap(tls.keyFile)
        XCTAssertEqual(chmod(key, 0o644), 0)
        expect(tls, .keyAccessibleByOthers(path: key, mode: 0o644))
        XCTAssertEqual(TLSCredentialError.keyAccessibleByOthers(path: key, mode: 0o644).description,
                       "private key \(key) is readable by others (mode 0644); run chmod 600 \(key)")
        XCTAssertEqual(chmod(key, 0o620), 0)
        expect(tls, .keyAccessibleByOthers(path: key, mode: 0o620))
        XCTAssertEqual(chmod(key, 0o600), 0)
        XCTAssertNoThrow(try tls.check())
    }

    func testMissingFilesAreNamed() throws {
        let federation = try TestFederation()
        let tls = federation.serverTLS
        expect(TLSConfiguration(caFile: tls.caFile, certificateFile: tls.certificateFile, keyFile: federation.directory + "/nobody.key"),
               .missingFile(role: "private key", path: federation.directory + "/nobody.key"))
        expect(TLSConfiguration(caFile: federation.directory + "/none.pem", certificateFile: tls.certificateFile, keyFile: tls.keyFile),
               .missingFile(role: "federation CA", path: federation.directory + "/none.pem"))
        expect(TLSConfiguration(caFile: tls.caFile, certificateFile: federation.directory, keyFile: tls.keyFile),
               .unreadableFile(role: "certificate", path: federation.directory, reason: "not a regular file"))
    }

    func testFilesThatAreNotPEMAreNamed() throws {
        let federation = try TestFederation()
        let tls = federation.serverTLS
        let junk = federation.directory + "/junk.pem"
        try Data("this is not a certificate\n".utf8).write(to: URL(fileURLWithPath: junk))
        XCTAssertEqual(chmod(junk, 0o600), 0)
        func notPEM(_ configuration: TLSConfiguration, _ matches: (TLSCredentialError) -> Bool) {
            XCTAssertThrowsError(try configuration.check()) { error in
                guard let credential = error as? TLSCredentialError else { return XCTFail("\(error)") }
                XCTAssertTrue(matches(credential), "\(credential)")
                XCTAssertTrue(credential.description.contains(junk), credential.description)
            }
        }
        notPEM(TLSConfiguration(caFile: junk, certificateFile: tls.certificateFile, keyFile: tls.keyFile)) {
            if case .caNotPEM(junk, _) = $0 { true } else { false }
        }
        notPEM(TLSConfiguration(caFile: tls.caFile, certificateFile: junk, keyFile: tls.keyFile)) {
            if case .certificateNotPEM(junk, _) = $0 { true } else { false }
        }
        notPEM(TLSConfiguration(caFile: tls.caFile, certificateFile: tls.certificateFile, keyFile: junk)) {
            if case .keyNotPEM(junk, _) = $0 { true } else { false }
        }
    }

    func testAKeyFromAnotherCertificateIsNamed() throws {
        let federation = try TestFederation()
        let other = try federation.agentTLS("agent-1")
        let tls = TLSConfiguration(caFile: federation.serverTLS.caFile, certificateFile: federation.serverTLS.certificateFile, keyFile: other.keyFile)
        expect(tls, .keyDoesNotMatchCertificate(certificate: tls.certificateFile!, key: other.keyFile!))
    }
}
