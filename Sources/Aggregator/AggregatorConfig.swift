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

    public static let topKeys = ["listen", "tls", "allow", "spool", "output", "round"]
    public static let roundKeys = ["id", "base_model", "subset", "min_agents", "deadline", "eval_timeout", "heads", "methods"]
    public static let headsModes = ["average", "keep", "per_label"]

    /// The statistics the configured methods need from every agent (wire names: gram, fisher, kfac_out, label_counts).
    public var wantedStatistics: [String] {
        Set(methods.flatMap { $0.choice.requiredStatistics.map(\.rawValue) }).sorted()
    }

    public static func load(file: String) throws -> AggregatorConfig {
        let top = try ConfigReader.load(file: file)
        try top.onlyKeys(topKeys)
        let listen = try top.string("listen", help: "the ZeroMQ endpoint to bind, e.g. tcp://0.0.0.0:7070")
        guard listen.hasPrefix("tcp://") else {
            throw ConfigError.invalid(file: file, key: "listen", value: "'\(listen)'", allowed: "a tcp:// endpoint such as tcp://0.0.0.0:7070")
        }
        let tls = try readTLS(top)
        let allow = try top.strings("allow", help: "the certificate names admitted to the federation")
        let spool = try top.path("spool", help: "directory for durable uploads")
        let output = try top.path("output", help: "directory for merged models and reports")

        let round = try top.section("round")
        try round.onlyKeys(roundKeys)
        let id = try round.int("id", range: 0...Int(Int32.max))
        let base = try round.path("base_model", help: "the pretrained model directory every agent fine-tuned from")
        let subset = try round.strings("subset", help: "the agents (certificate names) whose models this round merges")
        guard !subset.isEmpty else {
            throw ConfigError.invalid(file: file, key: "round.subset", value: "[]", allowed: "at least one agent name")
        }
        for (i, name) in subset.enumerated() {
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
            guard label.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", options: .regularExpression) != nil else {
                throw ConfigError.invalid(file: file, key: entry.key("name"), value: "'\(label)'", allowed: "letters, digits, '.', '_' and '-' (it names a directory)")
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
                                evalTimeout: evalTimeout, heads: heads, methods: methods)
    }

    static func readTLS(_ top: ConfigReader) throws -> TLSConfiguration {
        let tls = try top.section("tls")
        try tls.onlyKeys(["ca", "cert", "key"])
        return TLSConfiguration(caFile: try tls.path("ca", help: "the federation CA certificate (PEM)"),
                                certificateFile: try tls.path("cert", help: "this daemon's certificate (PEM)"),
                                keyFile: try tls.path("key", help: "this daemon's private key (PEM)"))
    }
}
