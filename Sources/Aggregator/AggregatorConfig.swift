// The aggregator's YAML config, validated on load: every error names the file, the key and
// what is allowed.

import DaemonSupport
import Foundation
import Merge
import Protocol

public struct AggregatorConfig: Sendable {
    /// One merge of the round: a method, its parameters and the label it is reported under.
    public struct MethodEntry: Sendable {
        public var label: String
        public var choice: MethodChoice
    }

    public var file: String
    public var listen: String
    public var tls: TLSConfiguration
    public var allow: [String]
    public var spool: String
    public var output: String
    public var round: Int
    public var baseModel: String
    /// The subset 𝒦 of agents whose models this round merges.
    public var subset: [String]
    public var minAgents: Int
    /// Seconds from start-up after which the round merges with whoever committed (if ≥ minAgents).
    public var deadline: Double
    /// Seconds to wait for EVALs once merged models are out, before writing the report anyway.
    public var evalTimeout: Double
    public var heads: String
    public var methods: [MethodEntry]
    /// What a contribution must satisfy to reach a merge (`round.checks` overrides the defaults).
    public var checks: PlausibilityLimits

    public static let topKeys = ["listen", "tls", "allow", "spool", "output", "round"]
    public static let roundKeys = ["id", "base_model", "subset", "min_agents", "deadline", "eval_timeout", "heads", "methods", "checks"]
    public static let checkKeys = ["max_tensor_distance", "max_model_distance", "distance_floor", "max_head_value",
                                   "symmetry_tolerance", "psd_tolerance", "heads_prefix"]
    /// Names under output/round-<id>/ that are not merged models: a method may not be labelled so.
    /// "local" is also what an agent's EVAL of its own model is called.
    public static let reservedLabels = ReservedLabel.all
    public static let headsModes = ["average", "keep", "per_label"]

    /// The statistics the configured methods need from every agent.
    public var statisticKinds: Set<StatisticKind> { Set(methods.flatMap { $0.choice.requiredStatistics }) }

    /// The same as wire names: gram, fisher, kfac_out, label_counts.
    public var wantedStatistics: [String] { statisticKinds.map(\.rawValue).sorted() }

    public static func load(file: String) throws -> AggregatorConfig {
        let top = try ConfigReader.load(file: file)
        try top.onlyKeys(topKeys)
        let listen = try top.string("listen", help: "the ZeroMQ endpoint to bind, e.g. tcp://0.0.0.0:7070")
        guard listen.hasPrefix("tcp://") else {
            throw ConfigError.invalid(file: file, key: "listen", value: "'\(listen)'", allowed: "a tcp:// endpoint such as tcp://0.0.0.0:7070")
        }
        let tls = try readTLS(top)
        let allow = try top.strings("allow", help: "the certificate names admitted to the federation")
        for (i, name) in allow.enumerated() {
            // Names become spool directories: the certificate-name rule keeps them inside it.
            guard PortableName.isAgentName(name) else {
                throw ConfigError.invalid(file: file, key: "allow[\(i)]", value: "'\(loggable(name))'", allowed: PortableName.rule)
            }
            guard allow.firstIndex(of: name) == i else {
                throw ConfigError.invalid(file: file, key: "allow[\(i)]", value: "'\(name)'", allowed: "each name once (it is already allow[\(allow.firstIndex(of: name)!)])")
            }
        }
        let spool = try top.path("spool", help: "directory for durable uploads")
        let output = try top.path("output", help: "directory for merged models and reports")
        // Uploads and published models must never alias: a method labelled like an agent would
        // otherwise publish that agent's own upload as "the merge".
        let spoolURL = URL(fileURLWithPath: spool).standardizedFileURL.path, outputURL = URL(fileURLWithPath: output).standardizedFileURL.path
        if spoolURL == outputURL || spoolURL.hasPrefix(outputURL + "/") || outputURL.hasPrefix(spoolURL + "/") {
            throw ConfigError.invalid(file: file, key: "output", value: "'\(output)'", allowed: "a directory apart from spool '\(spool)' (neither inside the other)")
        }

        let round = try top.section("round")
        try round.onlyKeys(roundKeys)
        let id = try round.int("id", range: 0...Int(Int32.max))
        let base = try round.path("base_model", help: "the pretrained model directory every agent fine-tuned from")
        let subset = try round.strings("subset", help: "the agents (certificate names) whose models this round merges")
        guard !subset.isEmpty else {
            throw ConfigError.invalid(file: file, key: "round.subset", value: "[]", allowed: "at least one agent name")
        }
        for (i, name) in subset.enumerated() {
            guard PortableName.isAgentName(name) else {
                throw ConfigError.invalid(file: file, key: "round.subset[\(i)]", value: "'\(loggable(name))'", allowed: PortableName.rule)
            }
            guard allow.contains(name) else {
                throw ConfigError.invalid(file: file, key: "round.subset[\(i)]", value: "'\(name)'", allowed: "a name listed under 'allow' (\(allow.joined(separator: ", ")))")
            }
            guard subset.firstIndex(of: name) == i else {
                throw ConfigError.invalid(file: file, key: "round.subset[\(i)]", value: "'\(name)'", allowed: "each agent once")
            }
        }
        let minAgents = try round.int("min_agents", default: subset.count, range: 1...subset.count)
        let deadline = try round.double("deadline", default: 3600, range: 1...(30 * 86400))
        let evalTimeout = try round.double("eval_timeout", default: 1800, range: 1...(30 * 86400))
        let heads = try round.choice("heads", headsModes, default: "average")

        var methods: [MethodEntry] = []
        for entry in try round.sections("methods") {
            try entry.onlyKeys(["merge_method", "parameters", "name"])
            var raw = entry.map
            // The round-wide heads mode applies unless a method sets its own.
            if case .map(var parameters) = raw["parameters"] ?? .map([:]) {
                if parameters["heads"] == nil { parameters["heads"] = .string(heads) }
                raw["parameters"] = .map(parameters)
            }
            let choice: MethodChoice
            do { choice = try MethodChoice(from: raw, file: file, keyPrefix: entry.path + ".") } catch {
                throw ConfigError.invalid(file: file, key: entry.path, value: "", allowed: "\(error)")
            }
            let label = try entry.string("name", default: choice.name)
            guard PortableName.isMethodLabel(label) else {
                throw ConfigError.invalid(file: file, key: entry.key("name"), value: "'\(loggable(label))'", allowed: "letters, digits, '.', '_' and '-', at most 64, not starting with '.' or '-' (it names a directory)")
            }
            guard !reservedLabels.contains(label), !subset.contains(label) else {
                throw ConfigError.invalid(file: file, key: entry.key("name"), value: "'\(label)'",
                                          allowed: "a label that is not an agent's name nor one of \(reservedLabels.joined(separator: ", "))")
            }
            guard !methods.contains(where: { $0.label == label }) else {
                throw ConfigError.invalid(file: file, key: entry.path, value: "'\(label)'",
                                          allowed: "a label used once; give repeated methods distinct `name:` keys (e.g. regmean-a0.5)")
            }
            methods.append(MethodEntry(label: label, choice: choice))
        }
        guard !methods.isEmpty else {
            throw ConfigError.invalid(file: file, key: "round.methods", value: "[]", allowed: "at least one {merge_method: …}")
        }
        return AggregatorConfig(file: file, listen: listen, tls: tls, allow: allow, spool: spool, output: output,
                                round: id, baseModel: base, subset: subset, minAgents: minAgents, deadline: deadline,
                                evalTimeout: evalTimeout, heads: heads, methods: methods, checks: try readChecks(round))
    }

    /// `round.checks`: overrides of the plausibility limits (Merge/Plausibility.swift explains each).
    static func readChecks(_ round: ConfigReader) throws -> PlausibilityLimits {
        var limits = PlausibilityLimits.standard
        guard let checks = try round.optionalSection("checks") else { return limits }
        try checks.onlyKeys(checkKeys)
        let positive = 1e-12...1e12
        limits.maxTensorDistance = try checks.double("max_tensor_distance", default: limits.maxTensorDistance, range: positive)
        limits.maxModelDistance = try checks.double("max_model_distance", default: limits.maxModelDistance, range: positive)
        limits.distanceFloor = try checks.double("distance_floor", default: limits.distanceFloor, range: positive)
        limits.maxHeadValue = try checks.double("max_head_value", default: limits.maxHeadValue, range: positive)
        limits.symmetryTolerance = try checks.double("symmetry_tolerance", default: limits.symmetryTolerance, range: 0...1)
        limits.psdTolerance = try checks.double("psd_tolerance", default: limits.psdTolerance, range: 0...1)
        limits.headsPrefix = try checks.string("heads_prefix", default: limits.headsPrefix)
        return limits
    }

    static func readTLS(_ top: ConfigReader) throws -> TLSConfiguration {
        let tls = try top.section("tls")
        try tls.onlyKeys(["ca", "cert", "key"])
        return TLSConfiguration(caFile: try tls.path("ca", help: "the federation CA certificate (PEM)"),
                                certificateFile: try tls.path("cert", help: "this daemon's certificate (PEM)"),
                                keyFile: try tls.path("key", help: "this daemon's private key (PEM)"))
    }
}
