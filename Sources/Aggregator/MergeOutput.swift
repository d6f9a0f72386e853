// One merge's output directory, `<output>/<merge-name>/`:
//   <label>/              merged model directories (renamed into place whole)
//   merge.json            the merge's record: generation, definition digest, phase, members
//   evals.json            every EVAL received for this generation (atomic rewrite)
//   eval-failures.json    evaluations an agent reported as failed
//   delivered.json        which merged models each agent has received
//   report.{md,json,svg}  written when every EVAL is in (or at eval_timeout)
// Method labels are portable names that are not reserved (ReservedLabel), so none of them
// can be one of these files.

import AtomicIO
import Foundation

public struct MergeOutput: Sendable {
    public let directory: String

    public init(outputRoot: String, merge: String) {
        directory = outputRoot + "/" + merge
    }

    public func create() throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw StoreError.cannotCreate(path: directory, reason: (error as NSError).localizedFailureReason ?? error.localizedDescription)
        }
    }

    public func mergedDirectory(_ label: String) -> String { directory + "/" + label }

    /// A merged model that was written completely (the directory is renamed into place whole).
    public func hasMerged(_ label: String) -> Bool {
        FileManager.default.fileExists(atPath: mergedDirectory(label) + "/model.safetensors")
    }

    /// `.<label>.partial-<pid>` and `.<label>.old-<pid>` directories: MergedModelDirectory's
    /// temporaries. Only the lock holder writes them, so any found at start are a crash's leftovers.
    @discardableResult
    public static func removeStalePartials(outputRoot: String) -> [String] {
        var stale: [String] = []
        for merge in (try? FileManager.default.contentsOfDirectory(atPath: outputRoot)) ?? [] where !merge.hasPrefix(".") {
            let dir = outputRoot + "/" + merge
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            where name.hasPrefix(".") && (name.contains(".partial-") || name.contains(".old-")) {
                try? FileManager.default.removeItem(atPath: dir + "/" + name)
                stale.append(merge + "/" + name)
            }
        }
        return stale
    }

    /// Removes the merged models of an earlier generation (a new generation merges afresh).
    public func clearMergedModels() throws {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in entries where FileManager.default.fileExists(atPath: directory + "/" + name + "/model.safetensors") {
            try FileManager.default.removeItem(atPath: directory + "/" + name)
        }
        for name in ["report.md", "report.json", "report.svg"] { try? FileManager.default.removeItem(atPath: directory + "/" + name) }
        try AtomicFile.syncDirectory(directory)
    }

    // MARK: record and ledger

    var recordPath: String { directory + "/merge.json" }
    public var evalsPath: String { directory + "/evals.json" }
    var failuresPath: String { directory + "/eval-failures.json" }
    var deliveredPath: String { directory + "/delivered.json" }

    public func loadRecord() -> MergeRecord? { load(recordPath) }
    public func saveRecord(_ record: MergeRecord) throws { try save(record, to: recordPath) }

    public func loadLedger() -> MergeLedger {
        var ledger = MergeLedger()
        ledger.evaluations = load(evalsPath) ?? [:]
        ledger.failures = load(failuresPath) ?? [:]
        ledger.delivered = load(deliveredPath) ?? [:]
        return ledger
    }

    public func saveLedger(_ ledger: MergeLedger) throws {
        try save(ledger.evaluations, to: evalsPath)
        try save(ledger.failures, to: failuresPath)
        try save(ledger.delivered, to: deliveredPath)
    }

    /// Every merge record under `outputRoot`, by name.
    public static func records(outputRoot: String) -> [String: (MergeRecord, MergeLedger)] {
        var out: [String: (MergeRecord, MergeLedger)] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: outputRoot)) ?? [] where !name.hasPrefix(".") {
            let output = MergeOutput(outputRoot: outputRoot, merge: name)
            if let record = output.loadRecord() { out[name] = (record, output.loadLedger()) }
        }
        return out
    }

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
