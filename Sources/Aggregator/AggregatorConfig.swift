// The aggregator's YAML config, validated on load: every error names the file, the key and
// what is allowed. The service part (listen, tls, allow, spool, output, base_model, checks,
// merges, metrics) plus, for scripts and older configs, one inline merge under `round:`.

import DaemonSupport
import Foundation
import Merge
import Protocol

public struct AggregatorConfig: Sendable {
    public var file: String
    public var listen: String
    public var tls: TLSConfiguration
    public var allow: [String]
    /// The contribution store's root (store/, quarantine, lock, forget requests).
    public var spool: String
    /// Merged models and reports, one directory per merge.
    public var output: String
    public var baseModel: String
    /// The directory of merge files (one YAML per merge), or nil when only `round:` is used.
    public var merges: String?
    /// The inline merge of a `round:` section, named `round-<id>`.
    public var inlineMerge: MergeDefinition?
    /// Prometheus text-format metrics, rewritten atomically on change.
    public var metrics: String
    /// What a contribution must satisfy to reach a merge (`checks` overrides the defaults).
    public var checks: PlausibilityLimits
    /// `align:` — admit members whose base model differs and align them to a reference before
    /// merging (FederationAlignment.swift); nil: a different base is refused at HELLO.
    public var align: FederationAlignment?

    public static let topKeys = ["listen", "tls", "allow", "spool", "output", "base_model", "checks", "merges", "metrics", "round", "align"]
    public static let roundKeys = ["id", "base_model", "subset", "min_agents", "deadline", "eval_timeout", "heads", "methods", "checks", "secure"]
    public static let checkKeys = ["max_tensor_distance", "max_model_distance", "distance_floor", "max_head_value",
                                   "symmetry_tolerance", "psd_tolerance", "heads_prefix"]

    public static func load(file: String) throws -> AggregatorConfig {
        let top = try ConfigReader.load(file: file)
        try top.onlyKeys(topKeys)
        let listen = try top.string("listen", help: "the ZeroMQ endpoint to bind, e.g. tcp://0.0.0.0:7070")
        guard listen.hasPrefix("tcp://") else {
            throw ConfigError.invalid(file: file, key: "listen", value: "'\(listen)'", allowed: "a tcp:// endpoint such as tcp://0.0.0.0:7070")
        }
        let tls = try TLSConfiguration.read(top)
        let allow = try top.strings("allow", help: "the certificate names admitted to the federation")
        for (i, name) in allow.enumerated() {
            // Names become store directories: the certificate-name rule keeps them inside it.
            guard PortableName.isAgentName(name) else {
                throw ConfigError.invalid(file: file, key: "allow[\(i)]", value: "'\(loggable(name))'", allowed: PortableName.rule)
            }
            guard allow.firstIndex(of: name) == i else {
                throw ConfigError.invalid(file: file, key: "allow[\(i)]", value: "'\(name)'", allowed: "each name once (it is already allow[\(allow.firstIndex(of: name)!)])")
            }
        }
        let spool = try top.path("spool", help: "directory for the contribution store")
        let output = try top.path("output", help: "directory for merged models and reports")
        // Uploads and published models must never alias: a method labelled like an agent would
        // otherwise publish that agent's own upload as "the merge".
        let spoolURL = URL(fileURLWithPath: spool).standardizedFileURL.path, outputURL = URL(fileURLWithPath: output).standardizedFileURL.path
        if spoolURL == outputURL || spoolURL.hasPrefix(outputURL + "/") || outputURL.hasPrefix(spoolURL + "/") {
            throw ConfigError.invalid(file: file, key: "output", value: "'\(output)'", allowed: "a directory apart from spool '\(spool)' (neither inside the other)")
        }
        let merges = try top.optionalPath("merges")
        let round = try top.optionalSection("round")
        guard merges != nil || round != nil else {
            throw ConfigError.missing(file: file, key: "merges", expected: "a directory of merge files, or a `round:` section with one merge")
        }
        var baseModel = try top.optionalPath("base_model")
        var checks = try readChecks(try top.optionalSection("checks"))
        // Before `round:`, whose merge must fit it (reference a member, no secure summation).
        let align = try top.optionalSection("align").map { try FederationAlignment.read($0, allow: allow) }
        var inline: MergeDefinition?
        if let round {
            try round.onlyKeys(roundKeys)
            let id = try round.int("id", range: 0...Int(Int32.max))
            if let base = try round.optionalPath("base_model") { baseModel = base }
            if let roundChecks = try round.optionalSection("checks") { checks = try readChecks(roundChecks) }
            inline = try MergeDefinition.read(round, name: "round-\(id)", id: id, allow: allow, alignReference: align?.reference)
        }
        guard let baseModel else {
            throw ConfigError.missing(file: file, key: "base_model", expected: "the pretrained model directory every agent fine-tuned from")
        }
        let metrics = try top.optionalPath("metrics") ?? spool + "/metrics.prom"
        return AggregatorConfig(file: file, listen: listen, tls: tls, allow: allow, spool: spool, output: output, baseModel: baseModel,
                                merges: merges, inlineMerge: inline, metrics: metrics, checks: checks, align: align)
    }

    /// `checks`: overrides of the plausibility limits (Merge/Plausibility.swift explains each).
    static func readChecks(_ checks: ConfigReader?) throws -> PlausibilityLimits {
        var limits = PlausibilityLimits.standard
        guard let checks else { return limits }
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
}
