// The experiment's YAML config (configs/experiments/<name>.yaml), validated on load: every
// error names the file and the key. Paths are relative to the config file.

import DaemonSupport
import Foundation
import Model

public struct ExperimentConfig: Sendable {
    /// One agent's data: a corpus file (optionally a separate test file) and its own max_len.
    public struct Member: Sendable {
        public var name: String
        public var title: String
        public var corpus: String
        public var input: String
        public var testInput: String?
        public var maxLength: Int

        /// The corpus readers a member may name (RawCorpusFormat's, or a prepared CSV/JSONL file).
        public static let corpora = ["vader", "trec", "sms-spam", "orange-tab", "csv", "jsonl"]

        public init(name: String, title: String, corpus: String, input: String, testInput: String?, maxLength: Int) {
            self.name = name; self.title = title; self.corpus = corpus; self.input = input; self.testInput = testInput; self.maxLength = maxLength
        }
    }

    public enum Setting: String, Sendable, CaseIterable {
        /// Same task, one agent per domain: in-domain round + leave-one-domain-out rounds.
        case domains
        /// Different tasks, own heads kept (heads: keep), encoder merged.
        case tasks
        /// One dataset in non-i.i.d. partitions (App. B), evaluated on the joint test set.
        case noniid
    }

    /// One repetition of the whole experiment: the same data splits, its own fine-tuning seeds.
    public struct Run: Sendable, Equatable {
        /// The seed of this repetition (agents' fine-tuning unless `agent_seeds` says otherwise, and MTL).
        public var seed: Int
        public var agentSeeds: [Int]
        public init(seed: Int, agentSeeds: [Int]) {
            self.seed = seed
            self.agentSeeds = agentSeeds
        }
    }

    public var file: String
    public var name: String
    public var setting: Setting
    public var baseModel: String
    public var workdir: String
    public var results: String
    public var seed: Int
    /// Seeds of the agents' classifier-head initialisation / fine-tuning (one per agent; all equal = same head init).
    public var agentSeeds: [Int]
    /// `seeds: [1, 2, 3]`: the experiment repeated per seed, every agent fine-tuning with that seed
    /// plus its `agent_seed_offsets` entry (none: all equal, the same head initialisation);
    /// without `seeds` one run with `agent_seeds` (today's behaviour).
    public var runs: [Run]
    public var epochs: Int
    /// MTL trains up to this many epochs, keeping the epoch best on validation.
    public var mtlMaxEpochs: Int
    public var learningRate: Double
    public var batchSize: Int
    public var trainSize: Int
    public var validationSize: Int
    public var testSize: Int
    public var gramBatches: Int
    public var fisherExamples: Int
    public var fisherLabels: FisherLabels
    public var kfacExamples: Int
    public var alphas: [Double]
    public var members: [Member]
    public var outOfDomain: Bool
    public var greedy: Bool
    public var greedyAlpha: Double
    public var mtl: Bool
    /// MaTS's CG iterations per tensor (its default 100; the smoke config lowers it to stay minute-scale).
    public var matsIterations: Int
    /// noniid: partitions and the key class's share in partition 0.
    public var partitions: Int
    public var keyFraction: Double
    /// Agents' own EVAL cap in rounds whose scores the runner computes itself (leave-one-out).
    public var agentEvalCap: Int
    public var roundTimeout: Double

    static let topKeys = ["name", "setting", "base_model", "workdir", "results", "seed", "seeds", "agent_seeds", "agent_seed_offsets", "train", "sizes", "stats",
                          "alphas", "members", "out_of_domain", "greedy", "greedy_alpha", "mtl", "mats_iterations", "partitions", "key_fraction",
                          "agent_eval_cap", "round_timeout"]

    public static func load(file: String) throws -> ExperimentConfig {
        let top = try ConfigReader.load(file: file)
        try top.onlyKeys(topKeys)
        let setting = Setting(rawValue: try top.choice("setting", Setting.allCases.map(\.rawValue)))!
        let train = try top.section("train")
        try train.onlyKeys(["epochs", "lr", "batch_size", "max_len", "mtl_max_epochs"])
        let defaultMaxLength = try train.int("max_len", default: 48, range: 8...512)
        let sizes = try top.section("sizes")
        try sizes.onlyKeys(["train", "validation", "test"])
        let stats = try top.optionalSection("stats") ?? ConfigReader(file: file, path: "stats", map: [:])
        try stats.onlyKeys(["gram_batches", "fisher_examples", "fisher_labels", "kfac_examples"])

        var members: [Member] = []
        for m in try top.sections("members") {
            try m.onlyKeys(["name", "title", "corpus", "input", "test_input", "max_len"])
            let name = try m.string("name", help: "the agent's name (a certificate name)")
            guard name.range(of: "^[a-z0-9][a-z0-9-]{0,30}$", options: .regularExpression) != nil else {
                throw ConfigError.invalid(file: file, key: m.key("name"), value: "'\(name)'", allowed: "lower-case letters, digits and '-'")
            }
            guard !members.contains(where: { $0.name == name }) else {
                throw ConfigError.invalid(file: file, key: m.key("name"), value: "'\(name)'", allowed: "each name once")
            }
            members.append(Member(name: name, title: try m.string("title", default: name),
                                  corpus: try m.choice("corpus", Member.corpora),
                                  input: try m.path("input", help: "the raw corpus file"),
                                  testInput: try m.optionalPath("test_input"),
                                  maxLength: try m.int("max_len", default: defaultMaxLength, range: 8...512)))
        }
        let minimum = setting == .noniid ? 1 : 2
        guard members.count >= minimum else {
            throw ConfigError.invalid(file: file, key: "members", value: "\(members.count) entries", allowed: "at least \(minimum)")
        }
        if setting == .noniid && members.count != 1 {
            throw ConfigError.invalid(file: file, key: "members", value: "\(members.count) entries", allowed: "exactly one dataset for setting noniid (it is partitioned)")
        }
        let seed = try top.int("seed", default: 1, range: 0...Int(Int32.max))
        let epochs = try train.int("epochs", default: 1, range: 1...100)
        let partitions = try top.int("partitions", default: 2, range: 2...16)
        let agentCount = setting == .noniid ? partitions : members.count
        var agentSeeds = [Int](repeating: seed, count: agentCount)
        if top.has("agent_seeds") {
            let raw = try top.strings("agent_seeds", help: "one integer seed per agent")
            guard raw.count == agentCount, raw.allSatisfy({ Double($0) != nil }) else {
                throw ConfigError.invalid(file: file, key: "agent_seeds", value: "\(raw)", allowed: "\(agentCount) integers, one per agent")
            }
            agentSeeds = raw.map { Int(Double($0)!) }
        }
        var runs = [Run(seed: seed, agentSeeds: agentSeeds)]
        if top.has("seeds") {
            let raw = try top.strings("seeds", help: "fine-tuning seeds, one run of the whole experiment each")
            let values = raw.compactMap { Double($0) }.filter { $0 == $0.rounded() && $0 >= 0 && $0 <= Double(Int32.max) }.map { Int($0) }
            guard !raw.isEmpty, values.count == raw.count, Set(values).count == values.count else {
                throw ConfigError.invalid(file: file, key: "seeds", value: "\(raw)", allowed: "distinct non-negative integers")
            }
            if top.has("agent_seeds") {
                throw ConfigError.invalid(file: file, key: "seeds", value: "\(raw)", allowed: "either 'seeds' (every agent fine-tunes with each seed in turn) or 'agent_seeds' (one run), not both")
            }
            var offsets = [Int](repeating: 0, count: agentCount)
            if top.has("agent_seed_offsets") {
                let raw = try top.strings("agent_seed_offsets", help: "one integer per agent, added to each run's seed")
                let parsed = raw.compactMap { Double($0) }.filter { $0 == $0.rounded() && $0 >= 0 && $0 <= 1_000_000 }.map { Int($0) }
                guard raw.count == agentCount, parsed.count == raw.count else {
                    throw ConfigError.invalid(file: file, key: "agent_seed_offsets", value: "\(raw)",
                                              allowed: "\(agentCount) integers in 0…1000000, one per agent (added to each run's seed)")
                }
                offsets = parsed
            }
            runs = values.map { seed in Run(seed: seed, agentSeeds: offsets.map { seed + $0 }) }
        } else if top.has("agent_seed_offsets") {
            throw ConfigError.invalid(file: file, key: "agent_seed_offsets", value: "without 'seeds'",
                                      allowed: "only together with 'seeds' (one run: use 'agent_seeds')")
        }
        var alphas = [0.1, 0.5, 0.9, 1.0]
        if top.has("alphas") {
            let raw = try top.strings("alphas", help: "RegMean α values in (0, 1]")
            guard !raw.isEmpty, raw.allSatisfy({ Double($0).map { $0 > 0 && $0 <= 1 } ?? false }) else {
                throw ConfigError.invalid(file: file, key: "alphas", value: "\(raw)", allowed: "numbers in (0, 1]")
            }
            alphas = raw.map { Double($0)! }
        }
        return ExperimentConfig(
            file: file, name: try top.string("name", help: "the experiment's name (results/<name>/)"), setting: setting,
            baseModel: try top.path("base_model", help: "the pretrained model directory"),
            workdir: try top.path("workdir", help: "scratch directory for data, certificates, daemons' files"),
            results: try top.path("results", help: "where report.md/json/svg go"),
            seed: seed, agentSeeds: agentSeeds, runs: runs,
            epochs: epochs,
            mtlMaxEpochs: try train.int("mtl_max_epochs", default: max(epochs, 3), range: 1...100),
            learningRate: try train.double("lr", default: 5e-5, range: 1e-7...1),
            batchSize: try train.int("batch_size", default: 16, range: 1...1024),
            trainSize: try sizes.int("train", range: 2...1_000_000),
            validationSize: try sizes.int("validation", range: 1...1_000_000),
            testSize: try sizes.int("test", range: 1...1_000_000),
            gramBatches: try stats.int("gram_batches", default: 8, range: 1...100_000),
            fisherExamples: try stats.int("fisher_examples", default: 64, range: 1...1_000_000),
            fisherLabels: FisherLabels(rawValue: try stats.choice("fisher_labels", FisherLabels.allCases.map(\.rawValue),
                                                                  default: FisherLabels.exact.rawValue))!,
            kfacExamples: try stats.int("kfac_examples", default: 64, range: 1...1_000_000),
            alphas: alphas, members: members,
            outOfDomain: try top.bool("out_of_domain", default: setting == .domains),
            greedy: try top.bool("greedy", default: false),
            greedyAlpha: try top.double("greedy_alpha", default: 0.9, range: 1e-6...1),
            mtl: try top.bool("mtl", default: true),
            matsIterations: try top.int("mats_iterations", default: 40, range: 1...100_000),
            partitions: partitions,
            keyFraction: try top.double("key_fraction", default: 0.8, range: 0...1),
            agentEvalCap: try top.int("agent_eval_cap", default: 16, range: 1...1_000_000),
            roundTimeout: try top.double("round_timeout", default: 3000, range: 10...86400))
    }
}
