// One merge the aggregator runs: which agents' stored contributions (𝒦), which methods, who
// receives the merged models, and when to give up waiting. Read from a merge file
// (`merges/<name>.yaml`) or from the legacy `round:` section (one inline merge).

import DaemonSupport
import Foundation
import Merge
import Protocol

public struct MergeDefinition: Sendable, Equatable {
    /// One method of the merge and the label it is reported (and its directory named) under.
    public struct MethodEntry: Sendable, Equatable {
        public var label: String
        public var choice: MethodChoice
        public static func == (a: MethodEntry, b: MethodEntry) -> Bool {
            a.label == b.label && a.choice.name == b.choice.name && a.choice.rawParameters == b.choice.rawParameters
        }
    }

    /// Names its output directory `output/<name>/`; a portable method-label-like name.
    public var name: String
    /// The number EVALs and MERGED carry for this merge (the wire's `round`).
    public var id: Int
    /// The file it came from (the aggregator config for an inline merge).
    public var file: String
    public var subset: [String]
    /// Agents that receive the merged models and evaluate them (default: the merged agents).
    public var audience: [String]?
    public var minAgents: Int
    /// Seconds from the merge's start after which it merges the quorum (if ≥ minAgents).
    public var deadline: Double
    /// Seconds to wait for EVALs once merged models are out, before writing the report anyway.
    public var evalTimeout: Double
    public var heads: String
    public var methods: [MethodEntry]
    /// `secure: true`: the aggregator learns only the sums (issue 13): members upload masked
    /// fixed-point summands, never weights or statistics. Only methods of sums are admitted.
    public var secure: Bool = false

    /// The statistics every member must send for these methods.
    public var kinds: Set<StatisticKind> { Set(methods.flatMap { $0.choice.requiredStatistics }) }

    /// What decides the merged models: when it changes, the merge runs again. Deadlines and
    /// timeouts are not part of it (changing them does not redo a finished merge).
    public var digest: String {
        var lines = ["subset=" + subset.sorted().joined(separator: ","), "audience=" + (audience?.sorted().joined(separator: ",") ?? "-"), "heads=" + heads]
        for entry in methods {
            let parameters = entry.choice.rawParameters
            let text = parameters.keys.sorted().map { key in "\(key):\(parameters[key]!)" }.joined(separator: ",")
            lines.append("method=\(entry.label)=\(entry.choice.name)(\(text))")
        }
        if secure { lines.append("secure=true") }
        let text = lines.joined(separator: "\n")
        let hasher = SHA256Hasher()
        hasher.update(Data(text.utf8))
        return hasher.finalizeHex()
    }

    public static let fileKeys = ["name", "id", "subset", "audience", "methods", "heads", "min_agents", "deadline", "eval_timeout", "secure"]
    public static let headsModes = ["average", "keep", "per_label"]

    /// Reads a merge from `section` (a merge file's top level, or the config's `round`).
    /// `allow` is the federation's allow-list: every agent named must be on it.
    /// `alignReference`: the aggregator's `align:` reference, when set (checkAligned).
    static func read(_ section: ConfigReader, name: String, id: Int, allow: [String], alignReference: String? = nil) throws -> MergeDefinition {
        let file = section.file
        let subset = try agentList(section, "subset", allow: allow, help: "the agents (certificate names) whose contributions this merge merges")
        guard !subset.isEmpty else { throw ConfigError.invalid(file: file, key: section.key("subset"), value: "[]", allowed: "at least one agent name") }
        let audience = section.has("audience") ? try agentList(section, "audience", allow: allow, help: "the agents that receive the merged models") : nil
        let minAgents = try section.int("min_agents", default: subset.count, range: 1...subset.count)
        let deadline = try section.double("deadline", default: 3600, range: 1...(30 * 86400))
        let evalTimeout = try section.double("eval_timeout", default: 1800, range: 1...(30 * 86400))
        let heads = try section.choice("heads", headsModes, default: "average")

        var methods: [MethodEntry] = []
        for entry in try section.sections("methods") {
            try entry.onlyKeys(["merge_method", "parameters", "name"])
            var raw = entry.map
            // The merge-wide heads mode applies unless a method sets its own.
            if case .map(var parameters) = raw["parameters"] ?? .map([:]) {
                if parameters["heads"] == nil { parameters["heads"] = .string(heads) }
                raw["parameters"] = .map(parameters)
            }
            let choice = try MethodChoice(from: raw, file: file, keyPrefix: entry.path + ".")
            let label = try entry.string("name", default: choice.name)
            guard PortableName.isMethodLabel(label) else {
                throw ConfigError.invalid(file: file, key: entry.key("name"), value: "'\(loggable(label))'", allowed: "letters, digits, '.', '_' and '-', at most 64, not starting with '.' or '-' (it names a directory)")
            }
            guard !ReservedLabel.all.contains(label), !allow.contains(label) else {
                throw ConfigError.invalid(file: file, key: entry.key("name"), value: "'\(label)'",
                                          allowed: "a label that is not an agent's name nor one of \(ReservedLabel.all.joined(separator: ", "))")
            }
            guard !methods.contains(where: { $0.label == label }) else {
                throw ConfigError.invalid(file: file, key: entry.path, value: "'\(label)'",
                                          allowed: "a label used once; give repeated methods distinct `name:` keys (e.g. regmean-a0.5)")
            }
            // A method whose memory grows per model (MaTS kfac) is refused here, when the file
            // is read, rather than after every upload at merge time.
            if let limit = choice.maxModels, subset.count > limit {
                throw ConfigError.invalid(file: file, key: entry.key("parameters") + ".max_models", value: "\(limit) with \(subset.count) agents in subset",
                                          allowed: "at least the subset's size: \(choice.name) with these parameters keeps every model's factors in memory (raise max_models if memory allows, or merge fewer agents)")
            }
            methods.append(MethodEntry(label: label, choice: choice))
        }
        guard !methods.isEmpty else {
            throw ConfigError.invalid(file: file, key: section.key("methods"), value: "[]", allowed: "at least one {merge_method: …}")
        }
        let secure = try section.bool("secure", default: false)
        if secure { try checkSecure(methods, section) }
        if let alignReference { try checkAligned(reference: alignReference, subset: subset, secure: secure, methods: methods, section) }
        return MergeDefinition(name: name, id: id, file: file, subset: subset, audience: audience, minAgents: minAgents, deadline: deadline,
                               evalTimeout: evalTimeout, heads: heads, methods: methods, secure: secure)
    }

    /// `secure: true` admits only methods that need nothing but sums (Merge's SumMerge.methods);
    /// mats, ties and task_arithmetic need each agent's own terms.
    private static func checkSecure(_ methods: [MethodEntry], _ section: ConfigReader) throws {
        let entries = try section.sections("methods")
        for (entry, method) in zip(entries, methods) where !SumMerge.methods.contains(method.choice.name) {
            throw ConfigError.invalid(file: section.file, key: entry.key("merge_method"), value: "'\(method.choice.name)'",
                                      allowed: "with secure: true, one of \(SumMerge.methods.joined(separator: ", ")) (\(method.choice.name) needs each agent's own weights or statistics, which secure summation never shows the aggregator)")
        }
        // heads: keep is allowed: each member's head is its own (in no sum), so it travels in
        // the clear beside the masked summands, and secure.json says so.
    }

    /// With the aggregator's `align:` every member is permuted into the reference's basis
    /// before merging: the reference must be merged; secure summation is refused (the
    /// aggregator cannot permute a masked sum: its terms are hidden and each member's
    /// permutation differs); methods that need the base model are refused (a task vector
    /// θ − θ₀ means nothing for a member that did not start from θ₀).
    private static func checkAligned(reference: String, subset: [String], secure: Bool, methods: [MethodEntry], _ section: ConfigReader) throws {
        if secure {
            throw ConfigError.invalid(file: section.file, key: section.key("secure"), value: "true",
                                      allowed: "false while the aggregator config sets `align`: members are aligned by permuting their weights and statistics, which secure summation never shows the aggregator")
        }
        guard subset.contains(reference) else {
            throw ConfigError.invalid(file: section.file, key: section.key("subset"), value: "[\(subset.joined(separator: ", "))]",
                                      allowed: "a subset that includes the alignment reference '\(reference)' (align.reference of the aggregator config): the other members are aligned to its model")
        }
        let entries = try section.sections("methods")
        for (entry, method) in zip(entries, methods) where method.choice.method.needsBase {
            throw ConfigError.invalid(file: section.file, key: entry.key("merge_method"), value: "'\(method.choice.name)'",
                                      allowed: "a method that does not need the base model while `align` is set (members may start from different bases, so task vectors θ − θ₀ are not comparable)")
        }
    }

    private static func agentList(_ section: ConfigReader, _ key: String, allow: [String], help: String) throws -> [String] {
        let names = try section.strings(key, help: help)
        for (i, name) in names.enumerated() {
            guard PortableName.isAgentName(name) else {
                throw ConfigError.invalid(file: section.file, key: section.key("\(key)[\(i)]"), value: "'\(loggable(name))'", allowed: PortableName.rule)
            }
            guard allow.contains(name) else {
                throw ConfigError.invalid(file: section.file, key: section.key("\(key)[\(i)]"), value: "'\(name)'",
                                          allowed: "a name listed under 'allow' (\(allow.joined(separator: ", "))): unknown agent")
            }
            guard names.firstIndex(of: name) == i else {
                throw ConfigError.invalid(file: section.file, key: section.key("\(key)[\(i)]"), value: "'\(name)'", allowed: "each agent once")
            }
        }
        return names
    }
}
