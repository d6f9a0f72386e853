// `fedmerge certs init|issue`: the federation CA and the certificates daemons present on the
// wire (TLS 1.3, mutual authentication). Library side: Protocol/CertificateAuthority.swift.

import ArgumentParser
import Foundation
import Protocol

struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the federation CA and issue daemon certificates (PEM files).",
        discussion: """
        Run `init` once for the federation, then `issue` for the aggregator (with --server) and
        for every agent. Give each daemon ca.pem, its NAME.pem and NAME.key; keep ca.key offline.
        """,
        subcommands: [Init.self, Issue.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the federation CA: an EC P-256 key (ca.key, mode 0600) and a self-signed certificate (ca.pem).")

        @Option(help: "Directory for ca.pem and ca.key (created if missing).")
        var dir: String

        @Option(help: "Days the CA certificate stays valid.")
        var days = CertificateAuthority.defaultAuthorityDays

        @Flag(help: "Replace an existing CA. Every certificate it issued stops being trusted.")
        var force = false

        func validate() throws {
            guard days > 0 else { throw ValidationError("--days must be positive (got \(days)).") }
        }

        func run() throws {
            let ca = try CertificateAuthority.initialize(directory: dir, days: days, force: force)
            print("wrote \(ca.directory)/ca.pem and \(ca.directory)/ca.key (valid \(days) days)")
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue NAME.pem and NAME.key signed by the CA in --dir (NAME in the CN and the DNS SAN).")

        @Option(help: "Directory holding ca.pem and ca.key; the new files are written there too.")
        var dir: String

        @Option(help: "Daemon name: the aggregator's host name, or the agent name on the aggregator's allow-list.")
        var name: String

        @Flag(help: "Issue a server certificate (serverAuth and clientAuth); the default is an agent (clientAuth).")
        var server = false

        @Option(help: "Days the certificate stays valid.")
        var days = CertificateAuthority.defaultLeafDays

        @Flag(help: "Replace an existing NAME.pem / NAME.key.")
        var force = false

        func validate() throws {
            guard days > 0 else { throw ValidationError("--days must be positive (got \(days)).") }
            guard CertificateAuthority.isValidName(name) else {
                throw ValidationError("\(CertificateError.invalidName(name))")
            }
        }

        func run() throws {
            let files = try CertificateAuthority(directory: dir).issue(name: name, server: server, days: days, force: force)
            print("wrote \(files.certificate) and \(files.key) (\(server ? "server" : "agent"), valid \(days) days)")
        }
    }
}
