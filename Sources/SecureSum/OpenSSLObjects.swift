// SecureSum's use of the shared OpenSSL owners (OpenSSLSupport): reading a peer's PEM
// certificate with a SecureSumError naming it, and OpenSSL failures as SecureSumError.

import Foundation
import OpenSSLSupport

extension OwnedCertificate {
    /// Parses one PEM certificate; `what` names it in the error.
    static func read(pem: Data, what: String) throws -> OwnedCertificate {
        guard let certificate = read(pem: pem) else {
            throw SecureSumError.unreadablePEM(what: what, reason: drainOpenSSLErrors(or: "not a PEM certificate"))
        }
        return certificate
    }
}

func openSSLFailure(_ operation: String) -> SecureSumError {
    .openSSL(operation: operation, reason: drainOpenSSLErrors())
}
