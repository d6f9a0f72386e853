// The contribution store on disk: each agent's latest contribution, kept until it is
// replaced or forgotten, so any merge can use it without a new upload.
//   <spool>/.lock                                    held (flock) by the one aggregator serving this spool
//   <spool>/store/<agent>/<fingerprint>/             one ChunkReceiver spool: a file appears under its
//                                                    final name only after its SHA-256 was verified
//   <spool>/store/<agent>/<fingerprint>/.checked.json  the contribution passed the plausibility checks
//                                                    (the files' sizes and modification times it saw)
//   <spool>/store/<agent>/<fingerprint>/.superseded/ statistics that no longer covered what merges need
//   <spool>/store/.quarantine/<agent>/               a contribution that failed the checks, with reason.json
//   <spool>/forgotten.json                           agents the operator removed (`forget`)
//   <spool>/requests/forget-<agent>                  a `forget` waiting for the running aggregator
// Agent names and fingerprints are portable names (no '/', never starting with '.'), so none
// of them can reach the dot-entries above or leave these directories.

import AtomicIO
import Foundation
import Merge
import Protocol
import SafeTensors

public enum StoreError: Error, CustomStringConvertible {
    case cannotCreate(path: String, reason: String)
    case locked(path: String)

    public var description: String {
        switch self {
        case let .cannotCreate(path, reason): return "cannot create or use directory \(path): \(reason)"
        case let .locked(path): return "another aggregator is serving this spool (it holds \(path)); stop it first"
        }
    }
}

public struct ContributionStore: @unchecked Sendable {
    public let root: String
    public var store: String { root + "/store" }
    public var quarantineRoot: String { store + "/.quarantine" }
    public var requests: String { root + "/requests" }
    private let lockDescriptor: Int32

    /// Opens (creating) the store and takes its lock, so two aggregators never write one spool.
    public init(root: String) throws {
        self.root = root
        for directory in [root, root + "/store", root + "/requests"] {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw StoreError.cannotCreate(path: directory, reason: (error as NSError).localizedFailureReason ?? "\(error.localizedDescription)")
            }
            guard access(directory, W_OK) == 0 else { throw StoreError.cannotCreate(path: directory, reason: "not writable") }
        }
        let lockPath = root + "/.lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError.cannotCreate(path: lockPath, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError.locked(path: lockPath)
        }
        lockDescriptor = fd
    }

    /// True when a running aggregator holds the spool's lock.
    public static func isServed(root: String) -> Bool {
        let fd = open(root + "/.lock", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
        return true
    }

    public func directory(_ agent: String, _ fingerprint: String) -> String { store + "/" + agent + "/" + fingerprint }

    // MARK: reading the store (at start, and for `fedmerge status`)

    /// Every agent's stored contributions and quarantine, as the state machine starts from.
    /// The newest passed contribution is the agent's current one.
    public static func scan(root: String) -> [String: AgentRecord] {
        var agents: [String: AgentRecord] = [:]
        let store = root + "/store"
        for agent in (try? FileManager.default.contentsOfDirectory(atPath: store)) ?? [] where !agent.hasPrefix(".") {
            var record = AgentRecord()
            var newest: (Date, String)?
            for fp in (try? FileManager.default.contentsOfDirectory(atPath: store + "/" + agent)) ?? [] where ContributionFingerprint.isValid(fp) {
                let dir = store + "/" + agent + "/" + fp
                var c = StoredContribution()
                for file in contributionFiles(needStatistics: true) {
                    guard let attributes = try? FileManager.default.attributesOfItem(atPath: dir + "/" + file) else { continue }
                    c.files.insert(file)
                    c.bytes += (attributes[.size] as? NSNumber)?.uint64Value ?? 0
                }
                c.kinds = statisticKinds(path: dir + "/stats.safetensors")
                if isChecked(directory: dir, files: Array(c.files)) {
                    c.verdict = .passed
                    let when = ((try? FileManager.default.attributesOfItem(atPath: dir + "/.checked.json"))?[.modificationDate] as? Date) ?? .distantPast
                    if newest.map({ when > $0.0 }) ?? true { newest = (when, fp) }
                }
                record.contributions[fp] = c
            }
            record.current = newest?.1
            agents[agent] = record
        }
        for agent in (try? FileManager.default.contentsOfDirectory(atPath: store + "/.quarantine")) ?? [] where PortableName.isAgentName(agent) {
            if let q = quarantined(root: root, agent) { agents[agent, default: AgentRecord()].quarantine = q.reasons }
        }
        return agents
    }

    /// The statistic kinds a stats.safetensors holds (none when it is missing or unreadable). Reads only the header.
    public static func statisticKinds(path: String) -> Set<StatisticKind> {
        guard let file = try? SafeTensorsFile(path: path) else { return [] }
        return Set(StatisticKind.allCases.filter { $0.isPresent(tensorNames: file.names, metadataKeys: file.metadata.keys) })
    }

    // MARK: changing the store

    /// Moves a committed stats.safetensors that lacks statistics the merges now need out of the
    /// way (into `.superseded/`, nothing is deleted), so the agent is asked for a new one.
    public func retireStatistics(_ agent: String, _ fingerprint: String) throws {
        let dir = directory(agent, fingerprint)
        let aside = dir + "/.superseded"
        try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: true)
        var to = aside + "/stats.safetensors"
        var n = 1
        while FileManager.default.fileExists(atPath: to) { n += 1; to = aside + "/stats-\(n).safetensors" }
        try FileManager.default.moveItem(atPath: dir + "/stats.safetensors", toPath: to)
        try? FileManager.default.removeItem(atPath: dir + "/.checked.json")
        try AtomicFile.syncDirectory(dir)
    }

    /// Deletes a contribution durably: renamed out of sight first (one atomic step, fsynced), then removed.
    public func delete(_ agent: String, _ fingerprint: String) throws {
        let dir = directory(agent, fingerprint)
        guard FileManager.default.fileExists(atPath: dir) else { return }
        let doomed = store + "/" + agent + "/.deleting-" + fingerprint
        try? FileManager.default.removeItem(atPath: doomed)
        try FileManager.default.moveItem(atPath: dir, toPath: doomed)
        try AtomicFile.syncDirectory(store + "/" + agent)
        try FileManager.default.removeItem(atPath: doomed)
    }

    // MARK: plausibility verdicts

    /// Size and modification time of each committed file: what a verdict was made on.
    private static func fileStamps(directory: String, files: [String]) -> [String: String] {
        var result: [String: String] = [:]
        for name in files {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + name) else { continue }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            result[name] = "\(size)@\(modified)"
        }
        return result
    }

    /// True when the directory's current files passed the checks (a verdict on other files does not count).
    static func isChecked(directory: String, files: [String]) -> Bool {
        guard !files.isEmpty, let data = FileManager.default.contents(atPath: directory + "/.checked.json"),
              let recorded = try? JSONDecoder().decode([String: String].self, from: data) else { return false }
        return recorded == fileStamps(directory: directory, files: files)
    }

    public func markChecked(_ agent: String, _ fingerprint: String) throws {
        let dir = directory(agent, fingerprint)
        let files = contributionFiles(needStatistics: true).filter { FileManager.default.fileExists(atPath: dir + "/" + $0) }
        try AtomicFile.write(try JSONEncoder().encode(Self.fileStamps(directory: dir, files: files)), to: dir + "/.checked.json")
    }

    // MARK: quarantine

    public struct Quarantine: Codable, Sendable, Equatable {
        public var agent: String
        public var fingerprint: String?
        public var reasons: [String]
        public var at: Date
    }

    /// Moves the contribution to `.quarantine/<agent>/` with reason.json; it never reaches a
    /// merge, and the agent is refused until an operator removes that directory.
    public func quarantine(_ agent: String, _ fingerprint: String, reasons: [String]) throws {
        try FileManager.default.createDirectory(atPath: quarantineRoot, withIntermediateDirectories: true)
        let target = quarantineRoot + "/" + agent
        if FileManager.default.fileExists(atPath: target) {
            try FileManager.default.moveItem(atPath: target, toPath: target + ".\(Int(Date().timeIntervalSince1970))")
        }
        let source = directory(agent, fingerprint)
        if FileManager.default.fileExists(atPath: source) {
            try FileManager.default.moveItem(atPath: source, toPath: target)
        } else {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try AtomicFile.write(try encoder.encode(Quarantine(agent: agent, fingerprint: fingerprint, reasons: reasons, at: Date())), to: target + "/reason.json")
        try AtomicFile.syncDirectory(store)
    }

    /// Why the agent's contribution is quarantined, or nil.
    public static func quarantined(root: String, _ agent: String) -> Quarantine? {
        guard let data = FileManager.default.contents(atPath: root + "/store/.quarantine/" + agent + "/reason.json") else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try? decoder.decode(Quarantine.self, from: data)) ?? Quarantine(agent: agent, fingerprint: nil, reasons: ["(reason.json unreadable)"], at: Date())
    }

    // MARK: forgetting

    public static func forgotten(root: String) -> Set<String> {
        guard let data = FileManager.default.contents(atPath: root + "/forgotten.json"),
              let names = try? JSONDecoder().decode([String].self, from: data) else { return [] }
        return Set(names)
    }

    public func saveForgotten(_ names: [String]) throws {
        try AtomicFile.write(try JSONEncoder().encode(names), to: root + "/forgotten.json")
    }

    /// Asks the aggregator serving `root` to forget `agent` (it polls `requests/`).
    public static func requestForget(root: String, agent: String) throws {
        try FileManager.default.createDirectory(atPath: root + "/requests", withIntermediateDirectories: true)
        try AtomicFile.write(Data(agent.utf8), to: root + "/requests/forget-" + agent)
    }

    public static func isForgetPending(root: String, agent: String) -> Bool {
        FileManager.default.fileExists(atPath: root + "/requests/forget-" + agent)
    }

    /// Agents whose forgetting was requested, oldest request first.
    public func pendingForgets() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: requests)) ?? []
        return names.filter { $0.hasPrefix("forget-") }.map { String($0.dropFirst("forget-".count)) }.filter(PortableName.isAgentName).sorted()
    }

    public func completeForget(_ agent: String) throws {
        try? FileManager.default.removeItem(atPath: requests + "/forget-" + agent)
        try AtomicFile.syncDirectory(requests)
    }
}
