// The agent's YAML config, validated on load: every error names the file, the key and what
// is allowed.

import DaemonSupport
import Foundation
import Model
import Protocol

public struct AgentConfig: Sendable {
    public struct DataSection: Sendable, Equatable {
        public var train: String
        public var test: String
        /// "csv" | "jsonl" | nil (by file extension).
        public var format: String?
        public var textField: String
        public var labelField: String
        /// Label names in id order (nil: sorted unique labels of the training file).
        public var labels: [String]?
    }

    public struct TrainSection: Sendable, Equatable {
        public var epochs: Int
        public var learningRate: Double
        public var batchSize: Int
        public var maxLength: Int
        public var seed: Int
        /// Cap on training examples (nil: all), taken after a seeded shuffle.
        public var maxExamples: Int?
    }

    public struct StatsSection: Sendable, Equatable {
        public var gramBatches: Int
        public var fisherExamples: Int
        /// Which labels the Fisher averages over (FisherLabels; default exact).
        public var fisherLabels: FisherLabels
        /// Examples for the K-FAC output factors (MaTS with objective kfac).
        public var kfacExamples: Int
        public var batchSize: Int
    }

    /// `privacy: {gram_noise: {epsilon, delta, clip}}`: differentially private Grams (clip each
    /// row to clip·√d_in, Gaussian noise on the sums, PSD projection; Model/Privacy/GramNoise.swift).
    public struct GramNoiseSection: Sendable, Equatable {
        public var epsilon: Double
        public var delta: Double
        public var clip: Double
    }

    public var file: String
    public var name: String
    public var aggregator: String
    /// The certificate name the aggregator must present.
    public var serverName: String
    public var tls: TLSConfiguration
    public var baseModel: String
    public var data: DataSection
    /// Fine-tune from the base model (nil when `finetuned` names a ready model).
    public var train: TrainSection?
    public var finetuned: String?
    public var stats: StatsSection
    public var workdir: String
    /// Evaluation: max sequence length and examples (nil: the whole test split).
    public var evalMaxLength: Int
    public var evalMaxExamples: Int?
    /// nil: Grams are shared exactly as collected.
    public var gramNoise: GramNoiseSection?
    /// `privacy: {self_audit: true}`: before its Grams are uploaded the agent runs the layer-0
    /// audit on them, scored against its own training data (ModelWork). Off by default: on
    /// MiniLM the audit takes minutes.
    public var selfAudit = false

    public static let topKeys = ["name", "aggregator", "server_name", "tls", "base_model", "data", "train", "finetuned", "stats", "workdir", "eval", "privacy"]

    /// The optional `privacy` section: `gram_noise` and `self_audit`.
    static func loadPrivacy(_ top: ConfigReader) throws -> (gramNoise: GramNoiseSection?, selfAudit: Bool) {
        guard let p = try top.optionalSection("privacy") else { return (nil, false) }
        try p.onlyKeys(["gram_noise", "self_audit"])
        let selfAudit = try p.bool("self_audit", default: false)
        guard let g = try p.optionalSection("gram_noise") else { return (nil, selfAudit) }
        try g.onlyKeys(["epsilon", "delta", "clip"])
        let noise = GramNoiseSection(epsilon: try g.double("epsilon", range: 1e-3...1e3),
                                delta: try g.double("delta", default: 1e-5, range: 1e-12...0.1),
                                clip: try g.double("clip", default: 1, range: 1e-6...1e6))
        return (noise, selfAudit)
    }

    public static func load(file: String) throws -> AgentConfig {
        let top = try ConfigReader.load(file: file)
        try top.onlyKeys(topKeys)
        let name = try top.string("name", help: "this agent's name, as in its certificate")
        // The name becomes a path on both daemons (spool directory, head name): portable only.
        guard PortableName.isAgentName(name) else {
            throw ConfigError.invalid(file: file, key: "name", value: "'\(loggable(name))'", allowed: PortableName.rule)
        }
        let aggregator = try top.string("aggregator", help: "the aggregator endpoint, e.g. tcp://127.0.0.1:7070")
        guard aggregator.hasPrefix("tcp://") else {
            throw ConfigError.invalid(file: file, key: "aggregator", value: "'\(aggregator)'", allowed: "a tcp:// endpoint such as tcp://127.0.0.1:7070")
        }
        let tls = try TLSConfiguration.read(top)

        let d = try top.section("data")
        try d.onlyKeys(["train", "test", "format", "text_field", "label_field", "labels"])
        let format = try d.has("format") ? d.choice("format", ["csv", "jsonl"]) : nil
        let data = DataSection(train: try d.path("train", help: "the private training file (CSV or JSONL)"),
                               test: try d.path("test", help: "the private test file (CSV or JSONL)"),
                               format: format,
                               textField: try d.string("text_field", default: "text"),
                               labelField: try d.string("label_field", default: "label"),
                               labels: d.has("labels") ? try d.strings("labels", help: "label names in id order") : nil)

        var train: TrainSection?
        var finetuned: String?
        switch (top.has("train"), top.has("finetuned")) {
        case (true, true):
            throw ConfigError.invalid(file: file, key: "finetuned", value: "", allowed: "either 'train' (fine-tune here) or 'finetuned' (a ready model directory), not both")
        case (false, false):
            throw ConfigError.missing(file: file, key: "train", expected: "fine-tuning settings {epochs, lr, batch_size, max_len, seed}, or 'finetuned: DIR'")
        case (true, false):
            let t = try top.section("train")
            try t.onlyKeys(["epochs", "lr", "batch_size", "max_len", "seed", "max_examples"])
            train = TrainSection(epochs: try t.int("epochs", default: 3, range: 1...1000),
                                 learningRate: try t.double("lr", default: 5e-5, range: 1e-8...1),
                                 batchSize: try t.int("batch_size", default: 16, range: 1...4096),
                                 maxLength: try t.int("max_len", default: 128, range: 3...4096),
                                 seed: try t.int("seed", default: 42, range: 0...Int(Int32.max)),
                                 maxExamples: t.has("max_examples") ? try t.int("max_examples", range: 1...Int(Int32.max)) : nil)
        case (false, true):
            finetuned = try top.path("finetuned", help: "a fine-tuned model directory")
        }

        let s = try top.optionalSection("stats") ?? ConfigReader(file: file, path: "stats", map: [:])
        try s.onlyKeys(["gram_batches", "fisher_examples", "fisher_labels", "kfac_examples", "batch_size"])
        let stats = StatsSection(gramBatches: try s.int("gram_batches", default: 16, range: 1...1_000_000),
                                 fisherExamples: try s.int("fisher_examples", default: 256, range: 1...10_000_000),
                                 fisherLabels: FisherLabels(rawValue: try s.choice("fisher_labels", FisherLabels.allCases.map(\.rawValue),
                                                                                   default: FisherLabels.exact.rawValue))!,
                                 kfacExamples: try s.int("kfac_examples", default: 256, range: 1...10_000_000),
                                 batchSize: try s.int("batch_size", default: 16, range: 1...4096))
        let e = try top.optionalSection("eval") ?? ConfigReader(file: file, path: "eval", map: [:])
        try e.onlyKeys(["max_len", "max_examples"])

        let privacy = try loadPrivacy(top)
        var config = AgentConfig(file: file, name: name, aggregator: aggregator,
                           serverName: try top.string("server_name", default: "aggregator"), tls: tls,
                           baseModel: try top.path("base_model", help: "the pretrained model directory shared by the federation"),
                           data: data, train: train, finetuned: finetuned, stats: stats,
                           workdir: try top.path("workdir", help: "where this agent keeps its model, statistics and downloads"),
                           evalMaxLength: try e.int("max_len", default: train?.maxLength ?? 128, range: 3...4096),
                           evalMaxExamples: e.has("max_examples") ? try e.int("max_examples", range: 1...Int(Int32.max)) : nil)
        config.gramNoise = privacy.gramNoise
        config.selfAudit = privacy.selfAudit
        return config
    }
}
