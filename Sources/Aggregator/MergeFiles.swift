// The merge files: one YAML per merge in the `merges` directory, plus the inline `round:`
// merge. Read whole each time something changed; a file with an error is reported by name
// and, if it defined a merge before, that definition stays (a bad edit loses nothing).

import DaemonSupport
import Foundation
import Protocol

public struct MergeFiles: Sendable {
    public let directory: String?
    public let inline: MergeDefinition?
    public let allow: [String]
    /// The aggregator's `align: {reference}`, which every merge must fit.
    public let alignReference: String?

    public init(directory: String?, inline: MergeDefinition?, allow: [String], alignReference: String? = nil) {
        self.directory = directory
        self.inline = inline
        self.allow = allow
        self.alignReference = alignReference
    }

    /// The files' names, sizes and modification times: when this changes, read again.
    public func stamp() -> String {
        files().map { path -> String in
            let a = try? FileManager.default.attributesOfItem(atPath: path)
            let size = (a?[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(path):\(size):\(modified)"
        }.joined(separator: "\n")
    }

    func files() -> [String] {
        guard let directory else { return [] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) }.sorted().map { directory + "/" + $0 }
    }

    /// Every merge the files define, with ids: a file's `id`, else the id a record on disk
    /// gave that name (`knownIDs`), else the next free one. `previous` are the definitions in
    /// force, kept for files that now fail to read.
    public func read(knownIDs: [String: Int], previous: [MergeDefinition]) -> (definitions: [MergeDefinition], errors: [String]) {
        var definitions: [MergeDefinition] = inline.map { [$0] } ?? []
        var errors: [String] = []
        var nextID = (Array(knownIDs.values) + definitions.map(\.id) + previous.map(\.id)).max().map { $0 + 1 } ?? 1
        for path in files() {
            do {
                let top = try ConfigReader.load(file: path)
                try top.onlyKeys(MergeDefinition.fileKeys)
                let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
                let name = try top.string("name", default: stem)
                guard PortableName.isMethodLabel(name), !ReservedLabel.all.contains(name) else {
                    throw ConfigError.invalid(file: path, key: "name", value: "'\(loggable(name))'", allowed: "a portable name (letters, digits, '.', '_', '-'; it names output/<name>/)")
                }
                if let other = definitions.first(where: { $0.name == name }) {
                    // Two files, one name: the one that defined it before (or sorts first) keeps it.
                    let keeper = previous.first { $0.name == name }?.file ?? other.file
                    let loser = keeper == path ? other.file : path
                    errors.append("\(loser): merge name '\(name)' is already defined by \(keeper); this file is ignored until one of them is renamed")
                    if keeper == path, let i = definitions.firstIndex(where: { $0.name == name }) { definitions.remove(at: i) } else { continue }
                }
                let explicitID = top.has("id") ? try top.int("id", range: 0...Int(Int32.max)) : nil
                let id = explicitID ?? knownIDs[name] ?? previous.first { $0.name == name }?.id ?? nextID
                if let clash = definitions.first(where: { $0.id == id }) {
                    throw ConfigError.invalid(file: path, key: "id", value: "\(id)", allowed: "an id no other merge uses (\(clash.file) has it)")
                }
                let definition = try MergeDefinition.read(top, name: name, id: id, allow: allow, alignReference: alignReference)
                nextID = max(nextID, id + 1)
                definitions.append(definition)
            } catch {
                errors.append("\(error)")
                if let kept = previous.first(where: { $0.file == path }), !definitions.contains(where: { $0.name == kept.name }) {
                    definitions.append(kept)
                }
            }
        }
        return (definitions, errors)
    }
}
