// The round's durable state on disk, so a restarted aggregator loses nothing:
//   <spool>/round-<id>/.lock                 held (flock) by the one aggregator serving the round
//   <spool>/round-<id>/<agent>/              one ChunkReceiver spool per agent; a file appears under
//                                            its final name only after its SHA-256 was verified
//   <spool>/round-<id>/<agent>/.checked.json the contribution passed the plausibility checks
//                                            (the files' sizes and modification times it saw)
//   <spool>/round-<id>/<agent>/.superseded/  statistics that no longer cover the round's methods
//   <spool>/round-<id>/.quarantine/<agent>/  a contribution that failed the checks, with reason.json
//   <output>/round-<id>/<label>/             merged model directories (renamed into place whole)
//   <output>/round-<id>/evals.json           every EVAL received so far (atomic rewrite)
//   <output>/round-<id>/eval-failures.json   evaluations an agent reported as failed
//   <output>/round-<id>/delivered.json       which merged models each agent has received
// Agent names and method labels are portable names (no '/', never starting with '.'), so
// none of them can reach the dot-entries above or leave these directories.

import AtomicIO
import Foundation
import Merge
import Protocol
import SafeTensors

public enum RoundSpoolError: Error, CustomStringConvertible {
    case cannotCreate(path: String, reason: String)
    case locked(path: String)

    public var description: String {
        switch self {
        case let .cannotCreate(path, reason): return "cannot create or use directory \(path): \(reason)"
        case let .locked(path): return "another aggregator is serving this round (it holds \(path)); stop it first"
        }
    }
}

public struct RoundSpool: @unchecked Sendable {
    public let uploads: String
    public let output: String
    private let lockDescriptor: Int32

    /// Files every agent uploads; `stats.safetensors` only when a method needs statistics.
    public static func requiredFiles(needStatistics: Bool) -> [String] {
        needStatistics ? ["config.json", "model.safetensors", "stats.safetensors"] : ["config.json", "model.safetensors"]
    }

    /// Opens (creating) the round's directories and takes the round's lock, so two aggregators
    /// never write one spool; removes merged-model directories a killed aggregator left half-written.
    public init(spoolRoot: String, outputRoot: String, round: Int) throws {
        uploads = spoolRoot + "/round-\(round)"
        output = outputRoot + "/round-\(round)"
        for directory in [uploads, output] {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw RoundSpoolError.cannotCreate(path: directory, reason: (error as NSError).localizedFailureReason ?? "\(error.localizedDescription)")
            }
            guard access(directory, W_OK) == 0 else { throw RoundSpoolError.cannotCreate(path: directory, reason: "not writable") }
        }
        let lockPath = uploads + "/.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RoundSpoolError.cannotCreate(path: lockPath, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw RoundSpoolError.locked(path: lockPath)
        }
        lockDescriptor = fd
        removeStalePartials()
    }

    public func agentDirectory(_ agent: String) -> String { uploads + "/" + agent }

    public func mergedDirectory(_ label: String) -> String { output + "/" + label }

    /// `.<label>.partial-<pid>` and `.<label>.old-<pid>` directories: MergedModelDirectory's
    /// temporaries. Only the lock holder writes them, so any found at start are a crash's leftovers.
    @discardableResult
    public func removeStalePartials() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        let stale = entries.filter { $0.hasPrefix(".") && ($0.contains(".partial-") || $0.contains(".old-")) }
        for name in stale { try? FileManager.default.removeItem(atPath: output + "/" + name) }
        return stale
    }

    /// The required files this agent has durably committed.
    public func committedFiles(_ agent: String, required: [String]) -> [String] {
        required.filter { FileManager.default.fileExists(atPath: agentDirectory(agent) + "/" + $0) }
    }

    /// Every required file is committed and the statistics cover `kinds`.
    public func isComplete(_ agent: String, required: [String], kinds: Set<StatisticKind> = []) -> Bool {
        committedFiles(agent, required: required).count == required.count && missingStatistics(agent, kinds: kinds).isEmpty
    }

    /// The statistic kinds the agent's committed stats.safetensors lacks (all of them when it
    /// cannot be read). Reads only the header.
    public func missingStatistics(_ agent: String, kinds: Set<StatisticKind>) -> [StatisticKind] {
        guard !kinds.isEmpty else { return [] }
        let path = agentDirectory(agent) + "/stats.safetensors"
        guard FileManager.default.fileExists(atPath: path) else { return kinds.sorted { $0.rawValue < $1.rawValue } }
        guard let file = try? SafeTensorsFile(path: path) else { return kinds.sorted { $0.rawValue < $1.rawValue } }
        return kinds.sorted().filter { !$0.isPresent(tensorNames: file.names, metadataKeys: file.metadata.keys) }
    }

    /// Moves a committed stats.safetensors that lacks statistics the round now needs out of the
    /// way (into `.superseded/`, nothing is deleted), so the agent is asked for a new one.
    public func retireStatistics(_ agent: String) throws -> String {
        let from = agentDirectory(agent) + "/stats.safetensors"
        let directory = agentDirectory(agent) + "/.superseded"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var to = directory + "/stats.safetensors"
        var n = 1
        while FileManager.default.fileExists(atPath: to) { n += 1; to = directory + "/stats-\(n).safetensors" }
        try FileManager.default.moveItem(atPath: from, toPath: to)
        try? FileManager.default.removeItem(atPath: checkedPath(agent))
        try AtomicFile.syncDirectory(agentDirectory(agent))
        return to
    }

    /// A merged model that was written completely (the directory is renamed into place whole).
    public func hasMerged(_ label: String) -> Bool {
        FileManager.default.fileExists(atPath: mergedDirectory(label) + "/model.safetensors")
    }

    // MARK: plausibility verdicts

    private func checkedPath(_ agent: String) -> String { agentDirectory(agent) + "/.checked.json" }

    /// Size and modification time of each committed file: what a verdict was made on.
    private func fingerprint(_ agent: String, files: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for name in files {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: agentDirectory(agent) + "/" + name) else { continue }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            result[name] = "\(size)@\(modified)"
        }
        return result
    }

    /// True when the agent's current files passed the checks (a verdict on other files does not count).
    public func isChecked(_ agent: String, files: [String]) -> Bool {
        guard let data = FileManager.default.contents(atPath: checkedPath(agent)),
              let recorded = try? JSONDecoder().decode([String: String].self, from: data) else { return false }
        return recorded == fingerprint(agent, files: files)
    }

    public func markChecked(_ agent: String, files: [String]) throws {
        try AtomicFile.write(try JSONEncoder().encode(fingerprint(agent, files: files)), to: checkedPath(agent))
    }

    // MARK: quarantine

    public var quarantineRoot: String { uploads + "/.quarantine" }

    public struct Quarantine: Codable, Sendable, Equatable {
        public var agent: String
        public var reasons: [String]
        public var at: Date
    }

    /// Moves the agent's contribution to `.quarantine/<agent>/` with reason.json; it never
    /// reaches a merge, and the agent is refused for the rest of the round until an operator
    /// removes that directory.
    public func quarantine(_ agent: String, reasons: [String]) throws {
        try FileManager.default.createDirectory(atPath: quarantineRoot, withIntermediateDirectories: true)
        let target = quarantineRoot + "/" + agent
        if FileManager.default.fileExists(atPath: target) {
            let earlier = target + ".\(Int(Date().timeIntervalSince1970))"
            try FileManager.default.moveItem(atPath: target, toPath: earlier)
        }
        if FileManager.default.fileExists(atPath: agentDirectory(agent)) {
            try FileManager.default.moveItem(atPath: agentDirectory(agent), toPath: target)
        } else {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try AtomicFile.write(try encoder.encode(Quarantine(agent: agent, reasons: reasons, at: Date())), to: target + "/reason.json")
        try AtomicFile.syncDirectory(uploads)
    }

    /// Why the agent's contribution is quarantined, or nil.
    public func quarantined(_ agent: String) -> Quarantine? {
        guard let data = FileManager.default.contents(atPath: quarantineRoot + "/" + agent + "/reason.json") else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try? decoder.decode(Quarantine.self, from: data)) ?? Quarantine(agent: agent, reasons: ["(reason.json unreadable)"], at: Date())
    }

    // MARK: evaluations

    public typealias Evaluations = [String: [String: [String: Double]]]   // agent → method → metric → value
    public typealias Failures = [String: [String: String]]                 // agent → method → reason
    public typealias Delivered = [String: [String]]                        // agent → methods received

    public var evalsPath: String { output + "/evals.json" }
    var failuresPath: String { output + "/eval-failures.json" }
    var deliveredPath: String { output + "/delivered.json" }

    public func loadEvaluations() -> Evaluations { load(evalsPath) ?? [:] }
    public func saveEvaluations(_ evals: Evaluations) throws { try save(evals, to: evalsPath) }
    public func loadFailures() -> Failures { load(failuresPath) ?? [:] }
    public func saveFailures(_ failures: Failures) throws { try save(failures, to: failuresPath) }
    public func loadDelivered() -> Delivered { load(deliveredPath) ?? [:] }
    public func saveDelivered(_ delivered: Delivered) throws { try save(delivered, to: deliveredPath) }

    private func load<T: Decodable>(_ path: String) -> T? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(T.self, from: data)
    }

    private func save<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(value), to: path)
    }
}
