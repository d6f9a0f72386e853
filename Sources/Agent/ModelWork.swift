// The agent's local work on its own model: fine-tune (or take a fine-tuned model), compute
// the statistics the round asked for, and evaluate models on the local test split. Results
// are cached in the work directory under a hash of their inputs, so a restarted agent
// neither retrains nor recomputes what it already has.

import AtomicIO
import Foundation
import LinAlg
import Logging
import Model
import Protocol
import SafeTensors

public struct ModelWork: LocalWork {
    public let config: AgentConfig

    public init(config: AgentConfig) throws {
        self.config = config
        for path in [config.data.train, config.data.test] where !FileManager.default.fileExists(atPath: path) {
            throw ModelWorkError.missingData(path: path, config: config.file)
        }
        if let finetuned = config.finetuned, !FileManager.default.fileExists(atPath: finetuned + "/model.safetensors") {
            throw ModelWorkError.missingData(path: finetuned + "/model.safetensors", config: config.file)
        }
    }

    public var summary: String {
        if let t = config.train {
            return "fine-tunes \(config.baseModel) on \(config.data.train) (\(t.epochs) epoch(s), lr \(t.learningRate), batch \(t.batchSize), max_len \(t.maxLength)), tests on \(config.data.test)"
        }
        return "uses the fine-tuned model \(config.finetuned!), tests on \(config.data.test)"
    }

    func loadTrain() throws -> LabeledDataset {
        var data = try LabeledDataset.load(path: config.data.train, format: config.data.format.flatMap(DataFormat.init(rawValue:)),
                                           textField: config.data.textField, labelField: config.data.labelField,
                                           labelNames: config.data.labels)
        if let t = config.train, let cap = t.maxExamples, data.count > cap {
            data = data.shuffled(seed: UInt64(t.seed))
            data.examples = Array(data.examples.prefix(cap))
        }
        return data
    }

    func loadTest(labelNames: [String]) throws -> LabeledDataset {
        var data = try LabeledDataset.load(path: config.data.test, format: config.data.format.flatMap(DataFormat.init(rawValue:)),
                                           textField: config.data.textField, labelField: config.data.labelField,
                                           labelNames: labelNames)
        if let cap = config.evalMaxExamples, data.count > cap { data.examples = Array(data.examples.prefix(cap)) }
        return data
    }

    // MARK: prepare

    /// Everything the fine-tuned model depends on, hashed.
    func modelKey() throws -> String {
        var parts = ["base=" + (try ModelFingerprint.of(directory: config.baseModel))]
        if let t = config.train {
            parts.append("train=" + (try SHA256Hasher.hashFile(config.data.train)))
            parts.append("settings=\(t.epochs),\(t.learningRate),\(t.batchSize),\(t.maxLength),\(t.seed),\(t.maxExamples ?? -1)")
            parts.append("fields=\(config.data.textField),\(config.data.labelField),\(config.data.labels ?? []),\(config.data.format ?? "")")
        } else {
            parts.append("finetuned=" + (try ModelFingerprint.of(directory: config.finetuned!)))
        }
        return Self.hash(parts.joined(separator: "\n"))
    }

    /// The contribution's identity for the aggregator's store (HELLO `contribution`): the
    /// fine-tuned model's inputs and the statistics settings. Which kinds are computed is not
    /// part of it: the aggregator asks again when a stored contribution lacks a kind.
    public func contributionFingerprint() throws -> String? {
        Self.hash([try modelKey(), statisticsSettings].joined(separator: "\n"))
    }

    /// What the statistics depend on besides the model and the kinds asked for: the pass's
    /// sizes and the DP noise (a noised Gram is another contribution than an exact one).
    var statisticsSettings: String {
        ["\(config.stats.gramBatches),\(config.stats.fisherExamples),\(config.stats.kfacExamples),\(config.stats.batchSize)",
         config.gramNoise.map { "gram_noise=\($0.epsilon),\($0.delta),\($0.clip)" } ?? ""].joined(separator: "\n")
    }

    static func hash(_ text: String) -> String {
        let h = SHA256Hasher()
        h.update(Data(text.utf8))
        return h.finalizeHex()
    }

    public func prepare(statistics: [String], into directory: String, logger: Logger) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let manifestPath = directory + "/prepared.json"
        var manifest = (FileManager.default.contents(atPath: manifestPath)).flatMap { try? JSONDecoder().decode(PreparedManifest.self, from: $0) }
            ?? PreparedManifest()
        let modelKey = try modelKey()
        let haveModel = manifest.modelKey == modelKey && FileManager.default.fileExists(atPath: directory + "/model.safetensors")
        if haveModel {
            logger.info("reusing the fine-tuned model in \(directory) (inputs unchanged)")
        } else {
            manifest = PreparedManifest()
            try AtomicFile.write(try JSONEncoder().encode(manifest), to: manifestPath)   // invalidate first
            try makeModel(into: directory, logger: logger)
            manifest.modelKey = modelKey
            try AtomicFile.write(try JSONEncoder().encode(manifest), to: manifestPath)
        }
        guard !statistics.isEmpty else { return }
        let statsKey = Self.hash([modelKey, statistics.sorted().joined(separator: ","), statisticsSettings].joined(separator: "\n"))
        if manifest.statsKey == statsKey && FileManager.default.fileExists(atPath: directory + "/stats.safetensors") {
            logger.info("reusing statistics in \(directory) (inputs unchanged)")
        } else {
            try computeStatistics(statistics, modelDirectory: directory, logger: logger)
            manifest.statsKey = statsKey
            try AtomicFile.write(try JSONEncoder().encode(manifest), to: manifestPath)
        }
        if config.selfAudit && statistics.contains("gram") {
            try selfAudit(directory: directory, statsKey: statsKey, manifest: &manifest, manifestPath: manifestPath, logger: logger)
        }
    }

    private func makeModel(into directory: String, logger: Logger) throws {
        if let finetuned = config.finetuned {
            let model = try ModelDirectory.load(finetuned)
            try ModelDirectory.save(model, to: directory, tokenizerSource: finetuned)
            logger.info("using fine-tuned model \(finetuned)")
            return
        }
        let t = config.train!
        let base = try ModelDirectory.load(config.baseModel, seed: UInt64(t.seed))
        let tokenizer = try WordPieceTokenizer(vocabularyFile: config.baseModel + "/vocab.txt")
        let train = try loadTrain()
        let model = BertEncoder(base: base, labels: train.labelNames, problemType: train.isMultiLabel ? .multiLabel : .singleLabel,
                                pooling: .cls, seed: UInt64(t.seed))
        var options = TrainingOptions()
        options.epochs = t.epochs
        options.learningRate = Float(t.learningRate)
        options.batchSize = t.batchSize
        options.maxLength = t.maxLength
        options.seed = UInt64(t.seed)
        logger.info("fine-tuning", metadata: ["examples": "\(train.count)", "labels": "\(train.labelNames.joined(separator: "/"))",
                                              "epochs": "\(t.epochs)", "max_len": "\(t.maxLength)"])
        let summary = try Trainer(model: model, tokenizer: tokenizer, options: options).train(train, progressLabel: "\(config.name) fine-tune")
        logger.info("fine-tuned", metadata: ["steps": "\(summary.steps)", "seconds": "\(String(format: "%.1f", summary.seconds))",
                                             "final_loss": "\(summary.epochLosses.last.map { String(format: "%.4f", $0) } ?? "-")"])
        try ModelDirectory.save(model, to: directory, tokenizerSource: config.baseModel)
    }

    /// The statistics pass's sizes, example order and max_len for the kinds in `wanted` (no DP
    /// noise: computeStatistics adds it).
    func statisticsPlan(_ wanted: Set<String>) -> StatisticsPlan {
        var plan = StatisticsPlan()
        plan.batchSize = config.stats.batchSize
        plan.maxLength = config.train?.maxLength ?? config.evalMaxLength
        plan.gramBatches = wanted.contains("gram") ? config.stats.gramBatches : 0
        plan.fisherExamples = wanted.contains("fisher") ? config.stats.fisherExamples : 0
        plan.fisherLabels = config.stats.fisherLabels
        plan.kfacExamples = wanted.contains("kfac_out") ? config.stats.kfacExamples : 0
        plan.seed = UInt64(config.train?.seed ?? 42)
        return plan
    }

    private func computeStatistics(_ statistics: [String], modelDirectory: String, logger: Logger) throws {
        let model = try ModelDirectory.load(modelDirectory)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: modelDirectory + "/vocab.txt")
        let train = try loadTrain()
        let started = Date()
        var plan = statisticsPlan(Set(statistics))
        if let g = config.gramNoise, plan.gramBatches > 0 {
            plan.gramNoise = GramNoiseSettings(epsilon: g.epsilon, delta: g.delta, clip: g.clip)   // system randomness
            logger.info("Grams will be differentially private", metadata: ["epsilon": "\(g.epsilon)", "delta": "\(g.delta)", "clip": "\(g.clip)"])
        }
        try StatisticsRun.write(model: model, tokenizer: tokenizer, data: train, plan: plan,
                                to: modelDirectory + "/stats.safetensors", showProgress: false)
        logger.info("statistics computed", metadata: ["kinds": "\(statistics.joined(separator: ","))",
                                                      "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(started)))"])
    }

    /// The self-audit (`privacy.self_audit`): the layer-0 audit of `directory/stats.safetensors`
    /// — the Grams about to be uploaded, noised when DP is on — scored against the training
    /// examples they were computed from, as an aggregator holding the agent's model could attack
    /// them. Writes audit.json and audit.svg beside the statistics and logs the recall before the
    /// upload starts; the audit of these very statistics (same statistics key) is reused.
    private func selfAudit(directory: String, statsKey: String, manifest: inout PreparedManifest, manifestPath: String,
                           logger: Logger) throws {
        let path = directory + "/audit.json"
        var report: StatisticsAuditReport
        if manifest.auditKey == statsKey, let data = FileManager.default.contents(atPath: path),
           let cached = try? JSONDecoder().decode(StatisticsAuditReport.self, from: data) {
            report = cached
        } else {
            logger.info("self-audit: attacking the Grams about to be uploaded (layer 0), scored against the training data")
            let model = try ModelDirectory.load(directory)
            let tokenizer = try WordPieceTokenizer(vocabularyFile: directory + "/vocab.txt")
            let plan = statisticsPlan(["gram"])
            let truth = GramSampleTokens(data: try loadTrain(), tokenizer: tokenizer, plan: plan)
            report = try StatisticsAudit.run(model: model, modelPath: directory, tokenizer: tokenizer,
                                             stats: try SafeTensorsFile(path: directory + "/stats.safetensors"),
                                             positions: min(plan.maxLength, model.config.maxPositionEmbeddings), deepLayer: nil, truth: truth)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(report), to: path)
            try AtomicFile.write(Data(AuditChart.svg(report).utf8), to: directory + "/audit.svg")
            manifest.auditKey = statsKey
            try AtomicFile.write(try JSONEncoder().encode(manifest), to: manifestPath)
        }
        guard let score = report.layer0.score else { return }
        var metadata: Logger.Metadata = ["audit": "\(path)", "seconds": "\(String(format: "%.1f", report.seconds))"]
        if let noise = report.noise { metadata["epsilon"] = "\(noise.epsilon)" }
        logger.info("self-audit before upload: the layer-0 Gram gives back \(score.summary)", metadata: metadata)
    }

    // MARK: evaluate

    public func evaluate(modelDirectory: String, logger: Logger) throws -> [String: Double] {
        let model = try ModelDirectory.load(modelDirectory)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: modelDirectory + "/vocab.txt")
        let test = try loadTest(labelNames: model.config.labels)
        let result = try Evaluation.evaluate(model, tokenizer: tokenizer, data: test, maxLength: config.evalMaxLength)
        return ["accuracy": result.accuracy, "macro_f1": result.macroF1, "loss": result.meanLoss, "examples": Double(result.examples)]
    }
}

struct PreparedManifest: Codable {
    var modelKey: String?
    var statsKey: String?
    /// The statsKey of the statistics audit.json audited (self_audit).
    var auditKey: String?
}

public enum ModelWorkError: Error, CustomStringConvertible {
    case missingData(path: String, config: String)
    public var description: String {
        switch self {
        case let .missingData(path, config): return "\(config): \(path) does not exist"
        }
    }
}
