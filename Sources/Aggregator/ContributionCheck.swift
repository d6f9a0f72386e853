// ContributionCheck: one agent's committed upload (config.json, model.safetensors,
// stats.safetensors) judged against the round's base model before it may reach a merge.
// The arithmetic lives in Merge's Plausibility; this file reads the files, checks config.json,
// and turns every finding into one line naming the agent and the tensor or key at fault.

import Foundation
import Merge
import MergeIO

public struct ContributionCheck: Sendable {
    /// config.json keys that fix the architecture: an agent's value must equal the base model's.
    public static let architectureKeys = ["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                          "intermediate_size", "vocab_size", "max_position_embeddings",
                                          "type_vocab_size", "hidden_act", "layer_norm_eps"]
    /// config.json keys an agent may set (its labels and head); the merged config takes them
    /// from the agents, everything else from the base model.
    public static let agentKeys = ["architectures", "id2label", "label2id", "num_labels", "problem_type", "fedmerge_pooling"]

    public let base: NamedTensors
    /// The base config's architecture keys, as text.
    public let baseArchitecture: [String: String]
    public let limits: PlausibilityLimits

    public init(baseModel: String, limits: PlausibilityLimits) throws {
        base = try ModelFiles.loadModel(directory: baseModel).tensors
        let baseConfig = try Self.readConfig(baseModel + "/config.json")
        baseArchitecture = Self.architectureKeys.reduce(into: [:]) { into, key in baseConfig[key].map { into[key] = Self.text($0) } }
        self.limits = limits
    }

    /// Every reason the contribution in `directory` may not be merged (empty when it may), and
    /// the distances from the base model that were measured. `fromBase: false` (an agent
    /// admitted by `align` with another base model): the distances are measured and reported
    /// but not limited — a model that started from a permuted or differently seeded base is
    /// far from this base by construction; every other check applies.
    public func reasons(directory: String, fromBase: Bool = true) -> (reasons: [String], distances: String) {
        var reasons: [String] = []
        do {
            reasons += configReasons(try Self.readConfig(directory + "/config.json"))
        } catch {
            reasons.append("config.json: \(error)")
        }
        let model: NamedTensors
        do { model = try ModelFiles.loadModel(directory: directory).tensors } catch {
            return (reasons + ["model.safetensors: \(error)"], "")
        }
        var statistics: NamedStatistics?
        // Statistics are checked whenever they were sent (which kinds a merge needs is the store's business).
        if FileManager.default.fileExists(atPath: directory + "/stats.safetensors") {
            let all: Set<StatisticKind> = [.gram, .fisher, .kfacOut]
            do { statistics = try ModelFiles.loadStatistics(path: directory + "/stats.safetensors", model: "upload", kinds: all) } catch {
                return (reasons + ["stats.safetensors: \(error)"], "")
            }
        }
        var limits = limits
        if !fromBase { limits.maxTensorDistance = .infinity; limits.maxModelDistance = .infinity }
        let result = Plausibility.check(model: model, statistics: statistics, base: base, limits: limits)
        let violations = result.violations
        // One line per kind of finding is enough to act on; say how many more there were.
        var seen: [PlausibilityViolation.Kind: Int] = [:]
        for violation in violations {
            seen[violation.kind, default: 0] += 1
            if seen[violation.kind] == 1 { reasons.append(violation.description) }
        }
        for (kind, count) in seen.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where count > 1 {
            reasons.append("(\(count - 1) more \(kind.rawValue) finding\(count > 2 ? "s" : ""))")
        }
        let distances = String(format: "model %.4g (limit %.3g), largest tensor %.4g (limit %.3g)" + (fromBase ? "" : ", another base: not limited"),
                               result.modelDistance, limits.maxModelDistance, result.largestTensorDistance, limits.maxTensorDistance)
        return (reasons, distances)
    }

    /// The agent's config must describe the base model's architecture.
    func configReasons(_ config: [String: Any]) -> [String] {
        var reasons: [String] = []
        for key in Self.architectureKeys {
            guard let ours = baseArchitecture[key] else { continue }
            let theirs = config[key].map(Self.text)
            if ours != theirs {
                reasons.append("config.json: '\(key)' is \(theirs.map { "'\($0.prefix(60))'" } ?? "missing"), the base model's is '\(ours)'")
            }
        }
        return reasons
    }

    /// A config value as comparable text; numbers to 6 significant digits, since an fp32
    /// round trip turns 1e-12 into 9.99999996e-13.
    static func text(_ value: Any) -> String {
        if let number = value as? NSNumber, !(value is Bool) { return String(format: "%.6g", number.doubleValue) }
        return "\(value)"
    }

    static func readConfig(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ContributionError.unreadable(path: path) }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ContributionError.notJSONObject(path: path)
        }
        return object
    }

    /// The config.json a merged model is published with: the base model's, plus the agents'
    /// label keys when every merged agent agrees on them (with one head per agent they differ,
    /// and each agent's labels go under "fedmerge_head_labels"). Never one agent's file verbatim.
    public static func mergedConfig(baseModel: String, agentDirectories: [(agent: String, directory: String)],
                                    headsKept: Bool) throws -> [String: Any] {
        var config = try readConfig(baseModel + "/config.json")
        var agentConfigs: [(String, [String: Any])] = []
        for (agent, directory) in agentDirectories {
            agentConfigs.append((agent, try readConfig(directory + "/config.json")))
        }
        if headsKept {
            var labels: [String: Any] = [:]
            for (agent, c) in agentConfigs { if let id2label = c["id2label"] { labels[agent] = id2label } }
            config["fedmerge_head_labels"] = labels
            if let first = agentConfigs.first?.1["architectures"] { config["architectures"] = first }
            return config
        }
        for key in agentKeys {
            let values = agentConfigs.map { ($0.0, $0.1[key]) }
            guard let (_, firstValue) = values.first, let first = firstValue else { continue }
            for (agent, value) in values.dropFirst() {
                guard let value, NSDictionary(dictionary: ["v": value]).isEqual(to: ["v": first]) else {
                    throw ContributionError.disagreement(key: key, agent: agent, first: agentConfigs[0].0)
                }
            }
            config[key] = first
        }
        return config
    }
}

public enum ContributionError: Error, CustomStringConvertible {
    case unreadable(path: String)
    case notJSONObject(path: String)
    case disagreement(key: String, agent: String, first: String)

    public var description: String {
        switch self {
        case let .unreadable(path): return "\(path) cannot be read"
        case let .notJSONObject(path): return "\(path) is not a JSON object"
        case let .disagreement(key, agent, first):
            return "config.json key '\(key)' of agent \(agent) differs from agent \(first)'s; with heads: average or per_label every agent must use the same labels"
        }
    }
}
