// `fedmerge experiment`: one setting of the RegMean paper's evaluation, end to end — data,
// certificates, real daemons on loopback for every round, the runner's own scoring
// (individual models, ensemble, held-out domains, MTL), and results/<name>/report.{md,json}
// plus one SVG per table.

import Agent
import AtomicIO
import Foundation
import Merge
import MergeIO
import Model

/// A progress line on stdout, unbuffered (stdout is often a log file the user tails).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

public struct ExperimentRunner {
    public let config: ExperimentConfig
    public let executable: String
    public let command: String
    public let revision: String

    public init(config: ExperimentConfig, executable: String, command: String, revision: String) {
        self.config = config
        self.executable = executable
        self.command = command
        self.revision = revision
    }

    /// Everything that goes into the report.
    struct Report {
        var tables: [(slug: String, table: ResultTable, caption: String)] = []
        var mergeSeconds: [(round: String, seconds: [String: Double], wall: Double)] = []
        var notes: [String] = []
        var json: [String: Any] = [:]
        /// Per-item correctness on each column's test set, for the paired bootstrap: "simple",
        /// "fisher", "regmean" (α nearest 0.9) and "mtl" → column → item.
        var items: [String: [[Bool]]] = [:]
        /// MTL's validation curve and the epoch kept.
        var mtl: Scorer.MTLSummary?
        /// Markdown sections after the tables (the bootstrap intervals).
        struct Section {
            var title: String
            var caption: String
            var markdown: String
        }
        var sections: [Section] = []
    }

    /// The RegMean α the bootstrap compares: the one nearest the paper's default 0.9.
    var bootstrapAlpha: Double { config.alphas.min { abs($0 - 0.9) < abs($1 - 0.9) }! }

    /// Which items of `data` the model in `directory` gets right; its predictions are recorded beside it.
    func correct(_ scorer: Scorer, model directory: String, agent a: AgentData) throws -> [Bool] {
        let predicted = try scorer.predictions(model: directory, data: a.test, key: "test:" + a.name, file: "test-" + a.name, maxLength: a.maxLength)
        return zip(predicted, a.test.singleLabels).map { $0 == $1 }
    }

    /// The merged models of a round the bootstrap compares, scored per item by the runner. With
    /// `keptHeads` each agent's test runs on the merged encoder with that agent's own head, the
    /// model the agent itself assembles from MERGED (MergedDownload).
    func mergedItems(_ scorer: Scorer, _ round: RoundOutput, tests: [AgentData], keptHeads: Bool = false, _ report: inout Report) throws {
        for (key, label) in [("simple", "simple"), ("fisher", "fisher"), ("regmean", "regmean-a" + Self.format(bootstrapAlpha))] {
            report.items[key] = try tests.map { a in
                guard keptHeads else { return try correct(scorer, model: round.mergedModel(label), agent: a) }
                let root = round.directory + "/per-agent/" + a.name
                try MergedDownload.assemble(weights: round.mergedModel(label) + "/model.safetensors",
                                            localModel: config.workdir + "/agents/\(a.name)/prepared", agentName: a.name,
                                            mergedRoot: root, label: label)
                return try correct(scorer, model: root + "/" + label, agent: a)
            }
        }
    }

    /// The merge methods every round runs: Simple, Fisher (raw and L2-normalised per model), RegMean
    /// at each α, and MaTS with the K-FAC objective started from RegMean α=0.9 and from the simple average.
    var methods: [RoundMethod] {
        var m = [RoundMethod(label: "simple", yaml: "{name: simple, merge_method: average}", title: "Simple (average)"),
                 RoundMethod(label: "fisher", yaml: "{name: fisher, merge_method: fisher}", title: "Fisher"),
                 RoundMethod(label: "fisher-l2", yaml: "{name: fisher-l2, merge_method: fisher, parameters: {fisher_normalize: l2}}",
                             title: "Fisher (L2-normalised per model)")]
        for a in config.alphas {
            let label = "regmean-a" + Self.format(a)
            m.append(RoundMethod(label: label, yaml: "{name: \(label), merge_method: regmean, parameters: {alpha: \(a)}}",
                                 title: "RegMean α=" + Self.format(a)))
        }
        m.append(RoundMethod(label: "mats-kfac", yaml: "{name: mats-kfac, merge_method: mats, parameters: {objective: kfac, init: regmean, alpha: 0.9, iterations: \(config.matsIterations)}}",
                             title: "MaTS (K-FAC, init RegMean α=0.9)" + iterationsNote))
        m.append(RoundMethod(label: "mats-kfac-avg", yaml: "{name: mats-kfac-avg, merge_method: mats, parameters: {objective: kfac, init: average, iterations: \(config.matsIterations)}}",
                             title: "MaTS (K-FAC, init average)" + iterationsNote))
        return m
    }

    /// Row titles say when MaTS ran fewer CG iterations than its default.
    var iterationsNote: String { config.matsIterations == 40 ? "" : ", \(config.matsIterations) CG iterations" }

    static func format(_ a: Double) -> String { a == a.rounded() ? String(format: "%.1f", a) : String(a) }

    public func run() throws {
        let started = Date()
        let workdir = config.workdir
        for d in [workdir, config.results] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        say("experiment \(config.name) (\(config.setting.rawValue)) — revision \(revision)")
        var shared = Report()
        var agents: [AgentData]
        switch config.setting {
        case .noniid:
            let (a, partition) = try ExperimentData.preparePartitions(config, into: workdir + "/data")
            agents = a
            shared.json["key_class"] = a[0].labels[partition.keyClass]
            shared.notes.append("Non-i.i.d. partitions (App. B): key class **\(a[0].labels[partition.keyClass])**, \(Int(config.keyFraction * 100))% of its training examples in partition 0, partitions of equal size; both agents validate and test on the joint validation/test sets.")
        default:
            agents = try ExperimentData.prepareMembers(config, into: workdir + "/data")
        }
        shared.json["data"] = Dictionary(uniqueKeysWithValues: agents.map { ($0.name, $0.summary) })

        var federation = Federation(executable: executable, workdir: workdir, config: config, agents: agents)
        try federation.makeCertificates()
        let cache = FinetuneCache(directory: workdir + "/finetuned")
        var runs: [Report] = []
        var worst = 0.0, restored = 0
        for (k, run) in config.runs.enumerated() {
            if config.runs.count > 1 { say("experiment \(config.name): run \(k + 1) of \(config.runs.count), fine-tuning seed \(run.seed)") }
            federation.agentSeeds = run.agentSeeds
            var report = Report()
            // Fine-tuned models from an earlier run with the same inputs go back into the agents'
            // prepared directories; the agents check their inputs and skip fine-tuning.
            var keys: [String: String] = [:]
            for (i, a) in agents.enumerated() {
                let key = try FinetuneCache.key(trainFile: a.trainPath, seed: run.agentSeeds[i], epochs: config.epochs, learningRate: config.learningRate,
                                                batchSize: config.batchSize, maxLength: a.maxLength, labels: a.labels, baseModel: config.baseModel)
                keys[a.name] = key
                if try cache.restore(agent: a.name, key: key, into: workdir + "/agents/\(a.name)/prepared") {
                    restored += 1
                    say("agent \(a.name): fine-tuned model (seed \(run.agentSeeds[i])) restored from \(cache.directory)")
                }
            }
            let methods = self.methods
            let all = agents.map(\.name)
            // Every run's rounds have their own ids (and output directories), so the recorded predictions of all runs stay.
            let roundBase = 100 * k
            let scorer = try Scorer(vocabulary: config.baseModel + "/vocab.txt")   // one per run: the model paths are reused
            let heads = config.setting == .tasks ? "keep" : "average"
            let inDomain = try federation.round(id: roundBase + 1, subset: all, methods: methods, heads: heads, agentEvalCap: nil)
            report.mergeSeconds.append(((config.runs.count > 1 ? "seed \(run.seed): " : "") + "all \(all.count) agents", inDomain.mergeSeconds, inDomain.wallSeconds))
            cleanAgentRounds(agents, round: roundBase + 1)
            for a in agents { try cache.store(agent: a.name, key: keys[a.name]!, from: workdir + "/agents/\(a.name)/prepared") }

            // Cross-check: each agent's EVAL of its own model equals the runner's score of it.
            for a in agents {
                let mine = try scorer.score(model: workdir + "/agents/\(a.name)/prepared", data: a.test, key: "test:" + a.name, maxLength: a.maxLength)
                if let theirs = inDomain.evaluations[a.name]?["local"]?["accuracy"] { worst = max(worst, abs(theirs - mine.accuracy)) }
            }
            switch config.setting {
            case .domains: try domains(agents, federation, scorer, inDomain, methods, run: run, roundBase: roundBase, &report)
            case .tasks: try tasks(agents, scorer, inDomain, methods, run: run, &report)
            case .noniid: try noniid(agents, scorer, inDomain, methods, run: run, &report)
            }
            runs.append(report)
        }
        var report = try combine(runs, shared: shared)
        report.json["agent_vs_runner_max_abs_accuracy_difference"] = worst
        report.json["finetuned_restored_from_cache"] = restored
        report.notes.insert(String(format: "Consistency check: the agents' own EVALs of their local models and the runner's scores of the same models on the same test files differ by at most %.4f in accuracy.", worst), at: 0)
        report.notes.append("Fine-tuned agent models: \(restored) of \(agents.count * config.runs.count) restored from the cache \(cache.directory) (keyed by the agent's training split digest, fine-tuning seed, training recipe and base model fingerprint), the rest fine-tuned by the agents.")
        report.json["wall_seconds"] = Date().timeIntervalSince(started)
        try write(report, agents: agents, seconds: Date().timeIntervalSince(started))
        say("experiment \(config.name): report in \(config.results)/report.md (\(Int(Date().timeIntervalSince(started))) s)")
    }

    /// Agents keep every downloaded merged model per round; the scores are in evals.json, so drop them.
    func cleanAgentRounds(_ agents: [AgentData], round: Int) {
        for a in agents { try? FileManager.default.removeItem(atPath: config.workdir + "/agents/\(a.name)/round-\(round)") }
    }

    static func agentScore(_ out: RoundOutput, agent: String, label: String) -> Score? {
        guard let m = out.evaluations[agent]?[label], let acc = m["accuracy"], let f1 = m["macro_f1"] else { return nil }
        return Score(accuracy: acc, macroF1: f1)
    }

    func trainingOptions(maxLength: Int, seed: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = config.epochs
        o.learningRate = Float(config.learningRate)
        o.batchSize = config.batchSize
        o.maxLength = maxLength
        o.seed = UInt64(seed)
        return o
    }

    // MARK: setting 1 — domains

    func domains(_ agents: [AgentData], _ federation: Federation, _ scorer: Scorer, _ inDomain: RoundOutput,
                 _ methods: [RoundMethod], run: ExperimentConfig.Run, roundBase: Int, _ report: inout Report) throws {
        let individual = agents.map { config.workdir + "/agents/\($0.name)/prepared" }
        func test(_ i: Int, _ d: Int) throws -> Score {
            try scorer.score(model: individual[i], data: agents[d].test, key: "test:" + agents[d].name, maxLength: agents[d].maxLength)
        }
        func validation(model: String, _ d: Int) throws -> Score {
            try scorer.score(model: model, data: agents[d].validation, key: "val:" + agents[d].name, maxLength: agents[d].maxLength)
        }
        let n = agents.count
        let valMean: [[Double]] = try (0..<n).map { i in try (0..<n).map { d in try validation(model: individual[i], d).macroF1 } }
        func best(among members: [Int]) -> Int {
            members.max { a, b in
                let va = members.map { valMean[a][$0] }.reduce(0, +), vb = members.map { valMean[b][$0] }.reduce(0, +)
                return va != vb ? va < vb : a > b
            }!
        }

        // In-domain table (Table 2 analog).
        var t = ResultTable(title: "In-domain: merge all \(n) domain models, test on each domain", columns: agents.map(\.title))
        t.add("Avg. f₁..N", group: "individual", cells: try (0..<n).map { d in Score.mean(try (0..<n).map { try test($0, d) }) })
        let b = best(among: Array(0..<n))
        t.add("Best f₁..N", group: "individual", cells: try (0..<n).map { try test(b, $0) }, note: "f_\(agents[b].name), best mean validation macro-F1")
        t.add("Domain-specific fᵢ on domain i", group: "individual", cells: try (0..<n).map { try test($0, $0) })
        t.add("Ensemble (logit average)", group: "reference", cells: try (0..<n).map { d in
            try scorer.ensemble(models: individual, data: agents[d].test, key: "test:" + agents[d].name, maxLength: agents[d].maxLength)
        })
        for m in methods {
            t.add(m.title, group: "merge", cells: agents.map { Self.agentScore(inDomain, agent: $0.name, label: m.label) })
        }

        // Greedy subset selection (Fig. 6 analog) — prefixes merged offline from the agents' uploads.
        var greedyRow: ResultTable.Row?
        if config.greedy {
            let alphaLabel = "regmean-a" + Self.format(config.greedyAlpha)
            let meanValidation = Dictionary(uniqueKeysWithValues: (0..<n).map { (agents[$0].name, valMean[$0].reduce(0, +) / Double(n)) })
            let order = GreedySubset.order(validation: meanValidation)
            var prefixModels: [String] = []
            var prefixScores: [Double] = []
            var g = ResultTable(title: "Greedy subset selection (RegMean α=\(Self.format(config.greedyAlpha)), models added by validation score)",
                                columns: ["validation, mean over domains", "test, mean over domains"], showMean: false)
            for k in 1...n {
                let members = Array(order.prefix(k))
                let model: String
                if k == 1 { model = individual[agents.firstIndex { $0.name == members[0] }!] }
                else if k == n { model = inDomain.mergedModel(alphaLabel) }
                else { model = try offlineRegMean(members: members, alpha: config.greedyAlpha, into: config.workdir + "/greedy/prefix-\(k)") }
                let v = Score.mean(try (0..<n).map { try validation(model: model, $0) })!
                let tst = Score.mean(try (0..<n).map { d in
                    try scorer.score(model: model, data: agents[d].test, key: "test:" + agents[d].name, maxLength: agents[d].maxLength) })!
                prefixModels.append(model)
                prefixScores.append(v.macroF1)
                g.add("prefix \(k): " + members.joined(separator: " + "), group: "merge", cells: [v, tst])
            }
            let k = GreedySubset.bestPrefix(prefixScores: prefixScores)
            let cells = try (0..<n).map { d in
                try scorer.score(model: prefixModels[k - 1], data: agents[d].test, key: "test:" + agents[d].name, maxLength: agents[d].maxLength) }
            greedyRow = ResultTable.Row(label: "RegMean α=\(Self.format(config.greedyAlpha)), greedy subset", group: "merge", cells: cells,
                                        note: "best prefix on validation: \(k) of \(n) — \(order.prefix(k).joined(separator: ", "))")
            report.tables.append(("greedy", g, "Greedy subset selection (paper Fig. 6): the models sorted by mean validation macro-F1; prefixes of 2…N−1 models merged offline in-process with the Merge library from the agents' uploaded weights and Grams (the same files the aggregator spooled), the full set is the in-domain round's merge; the prefix with the best validation macro-F1 is kept."))
        }
        if let greedyRow { t.rows.append(greedyRow) }
        try mergedItems(scorer, inDomain, tests: agents, &report)
        if config.mtl {
            let (mtl, summary) = try trainMTL(agents, seed: run.seed)
            report.mtl = summary
            t.add("MTL (upper bound; outside the federation)", group: "reference", cells: try (0..<n).map { d in
                try scorer.score(model: mtl, data: agents[d].test, key: "test:" + agents[d].name, maxLength: agents[d].maxLength) })
            report.items["mtl"] = try agents.map { a in
                let rows = try scorer.logits(model: mtl, data: a.test, key: "test:" + a.name, maxLength: a.maxLength)
                return zip(rows, a.test.singleLabels).map { row, label in row.indices.max { row[$0] < row[$1] }! == label }
            }
        }
        for i in 0..<n { t.add("f_\(agents[i].name)", group: "each model", cells: try (0..<n).map { try test(i, $0) }) }
        report.tables.insert(("in-domain", t, "Table 2 analog. Every model is tested on every domain's test split; the mean is the macro-average over domains. Merged models are scored by the agents' own EVALs (each agent tests on its own domain); individual models, ensemble and MTL by the runner."), at: 0)

        // Out-of-domain table (Table 3 analog): leave one domain out, merge the rest, test on it.
        guard config.outOfDomain else { return }
        var o = ResultTable(title: "Out-of-domain: merge the other \(n - 1) domain models, test on the held-out domain", columns: agents.map(\.title))
        var avg: [Score?] = [], bestCells: [Score?] = [], ens: [Score?] = [], own: [Score?] = []
        var merged: [String: [Score?]] = [:]
        var bestNames: [String] = []
        for h in 0..<n {
            let members = (0..<n).filter { $0 != h }
            let out = try federation.round(id: roundBase + 2 + h, subset: members.map { agents[$0].name }, methods: methods, heads: "average",
                                           agentEvalCap: config.agentEvalCap)
            report.mergeSeconds.append(((config.runs.count > 1 ? "seed \(run.seed): " : "") + "without \(agents[h].name)", out.mergeSeconds, out.wallSeconds))
            cleanAgentRounds(agents, round: roundBase + 2 + h)
            avg.append(Score.mean(try members.map { try test($0, h) }))
            let bh = best(among: members)
            bestNames.append(agents[bh].name)
            bestCells.append(try test(bh, h))
            ens.append(try scorer.ensemble(models: members.map { individual[$0] }, data: agents[h].test, key: "test:" + agents[h].name, maxLength: agents[h].maxLength))
            own.append(try test(h, h))
            for m in methods {
                _ = try correct(scorer, model: out.mergedModel(m.label), agent: agents[h])   // recorded beside the model
                let score = try scorer.score(model: out.mergedModel(m.label), data: agents[h].test, key: "test:" + agents[h].name, maxLength: agents[h].maxLength)
                merged[m.label, default: []].append(score)
                // Merged weights: scored, not kept; the per-item predictions stay beside where they were.
                for file in (try? FileManager.default.contentsOfDirectory(atPath: out.mergedModel(m.label))) ?? [] where file.hasSuffix(".safetensors") {
                    try? FileManager.default.removeItem(atPath: out.mergedModel(m.label) + "/" + file)
                }
            }
        }
        o.add("Avg. f₁..N (the other domains' models)", group: "individual", cells: avg)
        o.add("Best f₁..N", group: "individual", cells: bestCells, note: "chosen on the training domains' validation: " + bestNames.joined(separator: ", "))
        o.add("Ensemble (logit average)", group: "reference", cells: ens)
        for m in methods { o.add(m.title, group: "merge", cells: merged[m.label]!) }
        o.add("Domain-specific f_h (trained on the held-out domain)", group: "reference", cells: own)
        report.tables.insert(("out-of-domain", o, "Table 3 analog. Column = the held-out domain h: the other \(n - 1) agents run a round through the daemons; the runner tests every model on h's test split. MTL is not shown here: a fair out-of-domain MTL needs one more training per held-out domain, which did not fit the time budget."), at: 1)
    }

    /// RegMean over the agents' uploaded model + statistics files, in-process (greedy prefixes).
    func offlineRegMean(members: [String], alpha: Double, into directory: String) throws -> String {
        let choice = try MethodChoice(from: ["merge_method": .string("regmean"), "parameters": .map(["alpha": .number(alpha)])], file: config.file)
        let inputs = members.map { MergeInput(name: $0, modelDirectory: config.workdir + "/agents/\($0)/prepared") }
        let (result, _) = try MergeLoop.run(choice, inputs: inputs, baseModel: nil)
        try? FileManager.default.removeItem(atPath: directory)
        try MergedModelDirectory.write(result, to: directory, sideFilesFrom: config.workdir + "/agents/\(members[0])/prepared")
        return directory
    }

    /// One MTL directory per seed, so a re-run finds every seed's MTL model (it reuses a model
    /// trained from the same description).
    func mtlDirectory(seed: Int) -> String {
        config.workdir + "/mtl" + (config.runs.count > 1 ? "-seed\(seed)" : "")
    }

    /// MTL on the union of the agents' training sets (same label space), early-stopped on the
    /// mean macro-F1 over the agents' distinct validation sets.
    func trainMTL(_ agents: [AgentData], seed: Int) throws -> (String, Scorer.MTLSummary) {
        var union = LabeledDataset(examples: [], labelNames: agents[0].labels, isMultiLabel: false)
        for a in agents { union.examples += a.train.examples }
        let dir = mtlDirectory(seed: seed)
        // noniid agents share one validation set: score it once.
        let validators = config.setting == .noniid ? [agents[0]] : agents
        var options = trainingOptions(maxLength: agents.map(\.maxLength).max()!, seed: seed)
        options.epochs = config.mtlMaxEpochs
        let summary = try Scorer.trainMTL(base: config.baseModel, data: union, options: options, directory: dir) { model, tokenizer in
            try validators.map { a in
                let rows = try Scorer.logits(model, tokenizer: tokenizer, data: a.validation, maxLength: a.maxLength)
                return Scorer.score(logits: rows, labels: a.validation.singleLabels, classes: a.labels.count).macroF1
            }.reduce(0, +) / Double(validators.count)
        }
        return (dir, summary)
    }

    // MARK: setting 2 — different tasks

    func tasks(_ agents: [AgentData], _ scorer: Scorer, _ round: RoundOutput, _ methods: [RoundMethod], run: ExperimentConfig.Run, _ report: inout Report) throws {
        var t = ResultTable(title: "Different tasks, heads kept: encoder merged, each task tested with its own head", columns: agents.map(\.title))
        t.add("Individual fᵢ on its own task", group: "individual", cells: agents.map { Self.agentScore(round, agent: $0.name, label: "local") })
        for m in methods { t.add(m.title, group: "merge", cells: agents.map { Self.agentScore(round, agent: $0.name, label: m.label) }) }
        if config.mtl {
            // One encoder and one joint head over "task:label"; each task predicts within its own block of the head.
            var names: [String] = [], offsets: [Int] = []
            var union = LabeledDataset(examples: [], labelNames: [], isMultiLabel: false)
            for a in agents {
                offsets.append(names.count)
                names += a.labels.map { a.name + ":" + $0 }
                union.examples += a.train.examples.map { LabeledExample(text: $0.text, labels: [$0.labels[0] + offsets.last!]) }
            }
            union.labelNames = names
            let dir = mtlDirectory(seed: run.seed)
            var options = trainingOptions(maxLength: agents.map(\.maxLength).max()!, seed: run.seed)
            options.epochs = config.mtlMaxEpochs
            report.mtl = try Scorer.trainMTL(base: config.baseModel, data: union, options: options, directory: dir) { model, tokenizer in
                // Early stopping on the mean over tasks of validation macro-F1, each task within its own block.
                try agents.enumerated().map { i, a in
                    let rows = try Scorer.logits(model, tokenizer: tokenizer, data: a.validation, maxLength: a.maxLength)
                    return Scorer.score(logits: rows, labels: a.validation.singleLabels, classes: a.labels.count, block: offsets[i]..<(offsets[i] + a.labels.count)).macroF1
                }.reduce(0, +) / Double(agents.count)
            }
            var mtlItems: [[Bool]] = []
            t.add("MTL (upper bound; outside the federation)", group: "reference", cells: try agents.enumerated().map { i, a in
                let logits = try scorer.logits(model: dir, data: a.test, key: "test:" + a.name, maxLength: a.maxLength)
                let block = offsets[i]..<(offsets[i] + a.labels.count)
                mtlItems.append(zip(logits, a.test.singleLabels).map { row, label in block.max { row[$0] < row[$1] }! - offsets[i] == label })
                return Scorer.score(logits: logits, labels: a.test.singleLabels, classes: a.labels.count, block: block)
            })
            report.items["mtl"] = mtlItems
        }
        try mergedItems(scorer, round, tests: agents, keptHeads: true, &report)
        report.tables.append(("tasks", t, "Fig. 4 analog (`heads: keep`). Every agent fine-tunes its own head; the round merges all other tensors and ships each agent the merged encoder with its own head back; the agents' EVALs on their own test splits fill the merge rows. Avg./Best f₁..N and Ensemble are not defined here (a model of one task cannot classify another task's labels). MTL: one encoder with a joint head over all tasks' labels, each task predicting within its own labels."))
    }

    // MARK: setting 3 — non-i.i.d. partitions

    func noniid(_ agents: [AgentData], _ scorer: Scorer, _ round: RoundOutput, _ methods: [RoundMethod], run: ExperimentConfig.Run, _ report: inout Report) throws {
        let test = agents[0].test, validation = agents[0].validation, maxLength = agents[0].maxLength
        let individual = agents.map { config.workdir + "/agents/\($0.name)/prepared" }
        let column = "\(config.members[0].title) (joint test)"
        var t = ResultTable(title: "Non-i.i.d. partitions of one dataset: merge the \(agents.count) partition models", columns: [column])
        let scores = try individual.map { try scorer.score(model: $0, data: test, key: "test", maxLength: maxLength) }
        let val = try individual.map { try scorer.score(model: $0, data: validation, key: "val", maxLength: maxLength).macroF1 }
        t.add("Avg. f₁..N", group: "individual", cells: [Score.mean(scores)])
        let b = val.indices.max { val[$0] != val[$1] ? val[$0] < val[$1] : $0 > $1 }!
        t.add("Best f₁..N", group: "individual", cells: [scores[b]], note: "f_\(agents[b].name), best validation macro-F1")
        t.add("Ensemble (logit average)", group: "reference", cells: [try scorer.ensemble(models: individual, data: test, key: "test", maxLength: maxLength)])
        for m in methods {
            // Every agent tests on the same joint test set; report the mean of their EVALs (equal up to float noise).
            t.add(m.title, group: "merge", cells: [Score.mean(agents.compactMap { Self.agentScore(round, agent: $0.name, label: m.label) })])
        }
        try mergedItems(scorer, round, tests: [agents[0]], &report)
        if config.mtl {
            let (mtl, summary) = try trainMTL(agents, seed: run.seed)
            report.mtl = summary
            t.add("MTL on the union (upper bound; outside the federation)", group: "reference", cells: [try scorer.score(model: mtl, data: test, key: "test", maxLength: maxLength)])
            let rows = try scorer.logits(model: mtl, data: test, key: "test", maxLength: maxLength)
            report.items["mtl"] = [zip(rows, test.singleLabels).map { row, label in row.indices.max { row[$0] < row[$1] }! == label }]
        }
        for (i, a) in agents.enumerated() { t.add("f_\(a.name)", group: "each model", cells: [scores[i]]) }
        report.tables.append(("noniid", t, "Table 1 analog: \(agents.count) agents, each holding one non-i.i.d. partition of the training data, merged in one round; everything is tested on the joint test split."))
    }

    // MARK: report

    func write(_ report: Report, agents: [AgentData], seconds: Double) throws {
        var md = ["# Experiment `\(config.name)` — \(config.setting.rawValue)", ""]
        md.append("- command: `\(command)`")
        md.append("- git revision: `\(revision)`; finished \(ISO8601DateFormatter().string(from: Date())) in \(Int(seconds)) s on this machine")
        md.append("- base model: \(URL(fileURLWithPath: config.baseModel).lastPathComponent); fine-tuning \(config.epochs) epoch(s), lr \(config.learningRate), batch \(config.batchSize); max_len \(agents.map { "\($0.name) \($0.maxLength)" }.joined(separator: ", "))")
        md.append("- sizes (caps): train \(config.trainSize)\(config.setting == .noniid ? " per partition" : " per agent"), validation \(config.validationSize), test \(config.testSize); data seed \(config.seed)" + (config.runs.count > 1 ? "" : "; agent seeds \(config.agentSeeds.map(String.init).joined(separator: ", "))\(Set(config.agentSeeds).count == 1 ? " (same classifier-head initialisation)" : " (different head initialisations)")"))
        md.append("- statistics: Gram over \(config.gramBatches) batches, Fisher (\(config.fisherLabels.rawValue) labels) over \(config.fisherExamples) examples, K-FAC over \(config.kfacExamples) examples")
        if config.runs.count > 1 {
            let sameHeads = config.runs.allSatisfy { Set($0.agentSeeds).count == 1 }
            let agentSeeds = sameHeads ? "every agent's fine-tuning seed (one classifier-head initialisation for all, and training order)"
                : "MTL's, and each agent fine-tunes with that seed plus its offset (different head initialisations; agent seeds per run: "
                    + config.runs.map { $0.agentSeeds.map(String.init).joined(separator: ", ") }.joined(separator: " / ") + ")"
            md.append("- seeds \(config.runs.map { String($0.seed) }.joined(separator: ", ")): the whole experiment run once per seed; the data splits stay fixed (data seed \(config.seed)), each run's seed is " + agentSeeds + (sameHeads ? " and MTL's" : ""))
            md.append("- cells: accuracy / macro-F1 in percent, each mean ± sample std over the \(config.runs.count) seeds; the mean column is the mean ± std of the per-seed means over columns; \"—\" = not applicable or not run")
        } else {
            md.append("- one seed (\(config.runs[0].seed)); `seeds: [1, 2, 3]` in the config repeats the experiment per fine-tuning seed and reports mean ± std")
            md.append("- cells: accuracy / macro-F1 in percent; \"—\" = not applicable or not run")
        }
        md.append("")
        md.append("## Data (seeded stratified splits; class counts)")
        md.append("")
        md.append("| agent | train | validation | test |")
        md.append("|---|---|---|---|")
        for a in agents { md.append("| \(a.name) | \(AgentData.describe(a.train)) | \(AgentData.describe(a.validation)) | \(AgentData.describe(a.test)) |") }
        md.append("")
        var tablesJSON: [[String: Any]] = []
        for (slug, table, caption) in report.tables {
            md.append("## \(table.title)")
            md.append("")
            md.append(caption)
            md.append("")
            md.append(table.markdown())
            md.append("![\(slug)](\(slug).svg)")
            md.append("")
            try AtomicFile.write(Data(table.svg().utf8), to: config.results + "/\(slug).svg")
            let data = try JSONEncoder().encode(table)
            tablesJSON.append(["slug": slug, "caption": caption, "table": try JSONSerialization.jsonObject(with: data)])
        }
        for section in report.sections {
            md += ["## \(section.title)", "", section.caption, "", section.markdown]
        }
        md.append("## Merge wall-clock per round (aggregator, seconds)")
        md.append("")
        let methods = self.methods
        let labels = methods.map(\.label)
        md.append("| round | " + methods.map(\.title).joined(separator: " | ") + " | round wall-clock |")
        md.append("|---|" + String(repeating: "---:|", count: labels.count + 1))
        for r in report.mergeSeconds {
            md.append("| \(r.round) | " + labels.map { r.seconds[$0].map { String(format: "%.1f", $0) } ?? "—" }.joined(separator: " | ") + String(format: " | %.0f |", r.wall))
        }
        md.append("")
        if !report.notes.isEmpty {
            md.append("## Notes")
            md.append("")
            for n in report.notes { md.append("- " + n) }
            md.append("")
        }
        try AtomicFile.write(Data(md.joined(separator: "\n").utf8), to: config.results + "/report.md")

        var json = report.json
        json["name"] = config.name
        json["setting"] = config.setting.rawValue
        json["command"] = command
        json["revision"] = revision
        json["settings"] = ["epochs": config.epochs, "lr": config.learningRate, "batch_size": config.batchSize,
                            "max_len": Dictionary(uniqueKeysWithValues: agents.map { ($0.name, $0.maxLength) }),
                            "train": config.trainSize, "validation": config.validationSize, "test": config.testSize,
                            "seed": config.seed, "agent_seeds": config.runs.map(\.agentSeeds), "seeds": config.runs.map(\.seed), "mtl_max_epochs": config.mtlMaxEpochs, "gram_batches": config.gramBatches,
                            "fisher_examples": config.fisherExamples, "fisher_labels": config.fisherLabels.rawValue, "kfac_examples": config.kfacExamples] as [String: Any]
        json["tables"] = tablesJSON
        json["merge_seconds"] = report.mergeSeconds.map { ["round": $0.round, "seconds": $0.seconds, "wall_seconds": $0.wall] as [String: Any] }
        json["notes"] = report.notes
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]),
                             to: config.results + "/report.json")
    }
}
