// Shared fixtures for the SecureSum tests: a real federation CA with agent certificates made
// by Protocol's CertificateAuthority (what `fedmerge certs` runs), a seeded generator, and a
// whole masked round run the way agents and the aggregator will run it.

import Foundation
import XCTest
import Protocol
@testable import SecureSum

/// A CA directory with certificates for `agents`, removed by `remove()`.
struct TestFederation {
    let directory: String
    let trust: FederationTrust

    init(agents: [String], label: String = "ca") throws {
        directory = NSTemporaryDirectory() + "fedmerge-securesum-\(label)-\(UUID().uuidString.prefix(8))"
        let ca = try CertificateAuthority.initialize(directory: directory)
        for agent in agents { try ca.issue(name: agent, server: false) }
        trust = try FederationTrust(caCertificateFile: directory + "/ca.pem")
    }

    func identity(_ agent: String) throws -> SigningIdentity {
        try SigningIdentity(certificateFile: directory + "/\(agent).pem", keyFile: directory + "/\(agent).key")
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// One agent's side of a round: its key pair, signed key and (after exchange) seeds.
final class TestAgent {
    let name: String
    let keyPair: AgreementKeyPair
    let signed: SignedPublicKey
    var seeds: [String: PairwiseSeed] = [:]

    init(_ name: String, federation: TestFederation, binding: KeyBinding) throws {
        self.name = name
        keyPair = try AgreementKeyPair()
        signed = try SignedPublicKey(signing: keyPair, as: try federation.identity(name), for: binding)
    }

    /// Verifies every relayed key as the agent would, then derives its seeds.
    func exchange(_ relayed: [SignedPublicKey], trust: FederationTrust, binding: KeyBinding) throws {
        let verified = try trust.verifyAll(relayed, for: binding)
        seeds = try PairwiseSeed.deriveAll(own: name, keyPair: keyPair, verified: verified, binding: binding)
    }

    /// fixed(x) + mask for summand `stream`.
    func upload(_ fixed: [UInt64], stream: UInt64) throws -> [UInt64] {
        try PairwiseMask.apply(try PairwiseMask.mask(for: name, seeds: seeds, stream: stream, count: fixed.count), to: fixed)
    }
}

/// Agents named agent-1 … agent-K that have exchanged keys for `binding`.
func exchangedAgents(_ count: Int, federation: TestFederation, binding: KeyBinding) throws -> [TestAgent] {
    let agents = try (1...count).map { try TestAgent("agent-\($0)", federation: federation, binding: binding) }
    let relayed = agents.map(\.signed)
    for agent in agents { try agent.exchange(relayed, trust: federation.trust, binding: binding) }
    return agents
}

/// xorshift64*: reproducible test data (not for masks, which come from OpenSSL).
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
    mutating func gaussian() -> Double {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self), v = Double.random(in: 0..<1, using: &self)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}

enum ExternalTool {
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
