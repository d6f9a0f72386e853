// The federation CA and the certificates it issues (what `fedmerge certs` runs): EC P-256
// keys, X.509 v3 with CA/leaf extensions, PEM files written atomically, keys mode 0600.

import COpenSSL
import OpenSSLSupport
import AtomicIO
import Foundation

public enum CertificateError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidName(String)
    case invalidValidity(notBefore: Date, notAfter: Date)
    case missingAuthority(directory: String)
    case unreadable(file: String, reason: String)
    case openSSL(operation: String, reason: String)

    public var description: String {
        switch self {
        case .invalidName(let name):
            "certificate name '\(name)' is not a DNS-style name (letters, digits, '-', '.', '_'; 1–63 characters; no leading '.' or '-')"
        case .invalidValidity(let notBefore, let notAfter):
            "validity period \(notBefore) … \(notAfter) is empty; notAfter must be later than notBefore"
        case .missingAuthority(let directory):
            "no federation CA in \(directory) (ca.pem, ca.key); run `fedmerge certs init --dir \(directory)` first"
        case .unreadable(let file, let reason):
            "cannot read \(file): \(reason)"
        case .openSSL(let operation, let reason):
            "OpenSSL could not \(operation): \(reason)"
        }
    }
}

extension OwnedKey {
    static func generateP256() throws -> OwnedKey {
        guard let key = fm_EVP_EC_gen_P256() else { throw CertificateError.openSSL(operation: "generate an EC P-256 key", reason: drainOpenSSLErrors()) }
        return OwnedKey(taking: key)
    }
}

/// Paths of one certificate and its key.
public struct CertificateFiles: Sendable, Equatable {
    public var certificate: String
    public var key: String
}

/// The federation CA kept in a directory as `ca.pem` + `ca.key`.
public struct CertificateAuthority: Sendable {
    public let directory: String
    let certificate: OwnedCertificate
    let key: OwnedKey

    public static let defaultAuthorityDays = 3650
    public static let defaultLeafDays = 825

    /// Creates a new CA in `directory` (made if missing). Refuses to replace an existing
    /// CA unless `force` — replacing it invalidates every certificate it issued.
    @discardableResult
    public static func initialize(directory: String, days: Int = defaultAuthorityDays, force: Bool = false) throws -> CertificateAuthority {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files = CertificateFiles(certificate: directory + "/ca.pem", key: directory + "/ca.key")
        try refuseOverwrite(files, force: force)
        let key = try OwnedKey.generateP256()
        let now = Date()
        let certificate = try makeCertificate(
            commonName: "FedMerge federation CA", publicKey: key, issuer: nil, signingKey: key,
            notBefore: now.addingTimeInterval(-300), notAfter: now.addingTimeInterval(Double(days) * 86400),
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ])
        try AtomicFile.write(try pem(privateKey: key), to: files.key, mode: 0o600, overwrite: force)
        try AtomicFile.write(try pem(certificate: certificate), to: files.certificate, mode: 0o644, overwrite: force)
        return CertificateAuthority(directory: directory, certificate: certificate, key: key)
    }

    /// Loads the CA from `directory`.
    public init(directory: String) throws {
        let certificatePath = directory + "/ca.pem", keyPath = directory + "/ca.key"
        guard FileManager.default.fileExists(atPath: certificatePath), FileManager.default.fileExists(atPath: keyPath) else {
            throw CertificateError.missingAuthority(directory: directory)
        }
        self.directory = directory
        self.certificate = try Self.readCertificate(certificatePath)
        self.key = try Self.readKey(keyPath)
        guard X509_check_private_key(certificate.handle, key.handle) == 1 else {
            ERR_clear_error()
            throw CertificateError.unreadable(file: keyPath, reason: "key does not belong to \(certificatePath)")
        }
    }

    private init(directory: String, certificate: OwnedCertificate, key: OwnedKey) {
        self.directory = directory
        self.certificate = certificate
        self.key = key
    }

    /// Issues `NAME.pem` + `NAME.key` into `directory` (default: the CA's), valid for `days`.
    @discardableResult
    public func issue(name: String, server: Bool, days: Int = defaultLeafDays, into directory: String? = nil, force: Bool = false) throws -> CertificateFiles {
        let now = Date()
        return try issue(name: name, server: server, notBefore: now.addingTimeInterval(-300),
                         notAfter: now.addingTimeInterval(Double(days) * 86400), into: directory, force: force)
    }

    /// Issues with an explicit validity window (tests use it to make expired certificates).
    @discardableResult
    public func issue(name: String, server: Bool, notBefore: Date, notAfter: Date, into directory: String? = nil, force: Bool = false) throws -> CertificateFiles {
        guard Self.isValidName(name) else { throw CertificateError.invalidName(name) }
        guard notAfter > notBefore else { throw CertificateError.invalidValidity(notBefore: notBefore, notAfter: notAfter) }
        let target = directory ?? self.directory
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let files = CertificateFiles(certificate: target + "/\(name).pem", key: target + "/\(name).key")
        try Self.refuseOverwrite(files, force: force)
        let leafKey = try OwnedKey.generateP256()
        let certificate = try Self.makeCertificate(
            commonName: name, publicKey: leafKey, issuer: self.certificate, signingKey: key,
            notBefore: notBefore, notAfter: notAfter,
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (NID_key_usage, "critical,digitalSignature"),
                // Servers also get clientAuth so one daemon certificate can dial out as well.
                (NID_ext_key_usage, server ? "serverAuth,clientAuth" : "clientAuth"),
                (NID_subject_alt_name, "DNS:\(name)"),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ])
        try AtomicFile.write(try Self.pem(privateKey: leafKey), to: files.key, mode: 0o600, overwrite: force)
        try AtomicFile.write(try Self.pem(certificate: certificate), to: files.certificate, mode: 0o644, overwrite: force)
        return files
    }

    /// Names become file names and certificate DNS names, so both rules apply.
    public static func isValidName(_ name: String) -> Bool {
        PortableName.isPortable(name, maxLength: 63) && name.utf8.first != UInt8(ascii: "-") && name != "ca"
    }

    /// Without `force`, refuses before any key is generated if either file exists
    /// (AtomicFile.write re-checks atomically when it links the file into place).
    private static func refuseOverwrite(_ files: CertificateFiles, force: Bool) throws {
        guard !force else { return }
        for path in [files.certificate, files.key] where FileManager.default.fileExists(atPath: path) {
            throw AtomicFileError.exists(path: path)
        }
    }

    // MARK: X.509 assembly

    private static func makeCertificate(commonName: String, publicKey: OwnedKey, issuer: OwnedCertificate?, signingKey: OwnedKey,
                                        notBefore: Date, notAfter: Date, extensions: [(Int32, String)]) throws -> OwnedCertificate {
        func fail(_ operation: String) -> CertificateError { .openSSL(operation: operation, reason: drainOpenSSLErrors()) }
        guard let raw = X509_new() else { throw fail("allocate a certificate") }
        let x509 = OwnedCertificate(taking: raw)
        guard X509_set_version(raw, 2) == 1 else { throw fail("set version 3") }

        // 128-bit random positive serial: unique without keeping a serial database.
        var serialBytes = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&serialBytes, 16) == 1 else { throw fail("draw a serial number") }
        serialBytes[0] &= 0x7F
        serialBytes[0] |= 0x01
        guard let serial = BN_bin2bn(serialBytes, 16, nil) else { throw fail("build a serial number") }
        defer { BN_free(serial) }
        guard BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(raw)) != nil else { throw fail("set the serial number") }

        guard ASN1_TIME_set(X509_getm_notBefore(raw), time_t(notBefore.timeIntervalSince1970)) != nil,
              ASN1_TIME_set(X509_getm_notAfter(raw), time_t(notAfter.timeIntervalSince1970)) != nil else { throw fail("set the validity period") }

        let subject = X509_get_subject_name(raw)
        guard X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC, "FedMerge", -1, -1, 0) == 1,
              X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, commonName, -1, -1, 0) == 1 else { throw fail("set the subject name") }
        let issuerHandle = issuer?.handle ?? raw
        guard X509_set_issuer_name(raw, X509_get_subject_name(issuerHandle)) == 1 else { throw fail("set the issuer name") }
        guard X509_set_pubkey(raw, publicKey.handle) == 1 else { throw fail("set the public key") }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuerHandle, raw, nil, nil, 0)
        fm_X509V3_set_ctx_nodb(&context)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else { throw fail("build extension \(String(cString: OBJ_nid2sn(nid))) = \(value)") }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(raw, ext, -1) == 1 else { throw fail("add extension \(String(cString: OBJ_nid2sn(nid)))") }
        }
        guard X509_sign(raw, signingKey.handle, EVP_sha256()) > 0 else { throw fail("sign the certificate") }
        return x509
    }

    // MARK: PEM

    private static func withMemoryBIO(_ operation: String, _ write: (OpaquePointer) -> Int32) throws -> Data {
        guard let bio = BIO_new(BIO_s_mem()) else { throw CertificateError.openSSL(operation: operation, reason: drainOpenSSLErrors()) }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw CertificateError.openSSL(operation: operation, reason: drainOpenSSLErrors()) }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = fm_BIO_get_mem_data(bio, &pointer)
        guard let pointer, length > 0 else { return Data() }
        return Data(bytes: pointer, count: length)
    }

    static func pem(certificate: OwnedCertificate) throws -> Data {
        try withMemoryBIO("write a PEM certificate") { PEM_write_bio_X509($0, certificate.handle) }
    }

    static func pem(privateKey: OwnedKey) throws -> Data {
        try withMemoryBIO("write a PEM private key") { PEM_write_bio_PrivateKey($0, privateKey.handle, nil, nil, 0, nil, nil) }
    }

    private static func withFileBIO<T>(_ path: String, _ read: (OpaquePointer) -> T?) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CertificateError.unreadable(file: path, reason: "no such file or not readable")
        }
        let result: T? = data.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return read(bio)
        }
        guard let result else { throw CertificateError.unreadable(file: path, reason: drainOpenSSLErrors(or: "not PEM")) }
        return result
    }

    static func readCertificate(_ path: String) throws -> OwnedCertificate {
        OwnedCertificate(taking: try withFileBIO(path) { PEM_read_bio_X509($0, nil, nil, nil) })
    }

    static func readKey(_ path: String) throws -> OwnedKey {
        OwnedKey(taking: try withFileBIO(path) { PEM_read_bio_PrivateKey($0, nil, nil, nil) })
    }
}
