// `fedmerge bench fleet`: how the aggregator's time, memory and disk grow with the number of
// agents K — one real aggregator (`--once`) and K real agent daemons uploading pre-made,
// per-agent perturbed MiniLM contributions (Experiment/FleetRun.swift), for each K; writes
// the table to results/fleet/fleet.{md,json}. `--agent CONFIG` is one such agent (hidden).

import Agent
import ArgumentParser
import DaemonSupport
import Experiment
import Foundation
import Logging

struct BenchFleet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "One aggregator and K = 2…64 lightweight agents: upload, merge, distribution times, the aggregator's peak memory and spool size per K.",
        discussion: """
        Agents are the real agent daemon as separate processes over TLS on loopback; their local work is a
        contribution made once from --source (a fine-tuned model directory with stats.safetensors, e.g.
        .cache/demo/work/amazon/prepared after scripts/demo.sh), perturbed per agent with seeded noise that keeps
        the aggregator's plausibility checks passing, and a fixed evaluation score. Disk: K × the contribution in
        --workdir plus the same in the round's spool (≈ 32 GB at K = 64 for MiniLM with Grams and Fishers).
        """
    )

    @Option(help: "A prepared model directory: model.safetensors, stats.safetensors (Grams and Fishers; K-FAC factors for --mats-up-to), config.json.")
    var source = ".cache/demo/work/amazon/prepared"
    @Option(help: "The federation's base model.")
    var baseModel = ".cache/models/minilm-l6"
    @Option(help: "Comma-separated fleet sizes K.")
    var ks = "2,4,8,16,32,64"
    @Option(help: "Scratch directory (certificates, every agent's contribution, one round at a time).")
    var workdir = NSTemporaryDirectory() + "fedmerge-fleet"
    @Option(help: "Where fleet.md and fleet.json go.")
    var out = "results/fleet"
    @Option(help: "Agents uploading at once (a new one starts when one has committed its contribution).")
    var concurrency = 8
    @Option(help: "Relative size of each agent's perturbation.")
    var noise = 1e-3
    @Option(help: "Comma-separated methods every round runs, from: \(BenchFleet.knownMethods.map(\.label).joined(separator: ", ")).")
    var methods = "regmean,fisher,average"
    @Option(help: "Also run MaTS K-FAC while K is at most this (0: never); the source needs K-FAC factors.")
    var matsUpTo = 0
    @Option(help: "MaTS CG iterations per tensor (few: the point is its memory, not its fit).")
    var matsIterations = 5
    @Option(help: "Abandon a round after this many seconds without progress.")
    var roundTimeout: Double = 900
    @Flag(help: "Keep --workdir afterwards (the contributions are reused by the next run).")
    var keep = false

    @Option(help: .hidden) var agent: String?

    /// The methods a round may run (label, merge-file entry).
    static let knownMethods: [(label: String, yaml: String)] = [
        ("regmean", "{merge_method: regmean, parameters: {alpha: 0.9}}"), ("fisher", "{merge_method: fisher}"), ("average", "{merge_method: average}"),
    ]

    func run() throws {
        if let agent { return try runAgent(config: agent) }
        let kList = ks.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
        guard !kList.isEmpty else { throw ValidationError("--ks: give at least one positive K, e.g. 2,4,8") }
        let chosen = try methods.split(separator: ",").map { name in
            guard let m = Self.knownMethods.first(where: { $0.label == name.trimmingCharacters(in: .whitespaces) }) else {
                throw ValidationError("--methods: unknown method '\(name)'; choose from \(Self.knownMethods.map(\.label).joined(separator: ", ")) (mats: --mats-up-to)")
            }
            return m
        }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let absolute = { (p: String) in p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p }
        var settings = FleetSettings(executable: executable, workdir: absolute(workdir), source: absolute(source), baseModel: absolute(baseModel),
                                     ks: kList, concurrency: max(1, concurrency), noise: noise,
                                     methods: chosen,
                                     mats: nil, roundTimeout: roundTimeout)
        if matsUpTo > 0 {
            settings.mats = ("mats", "{merge_method: mats, parameters: {objective: kfac, init: average, iterations: \(matsIterations)}}", matsUpTo)
        }
        let fleet = FleetRun(settings: settings)
        let loadBefore = Self.loadAverage()
        let started = Date()
        try fleet.prepare()
        var rows: [FleetRow] = []
        for k in kList {
            print("K = \(k): one aggregator, \(k) agents, at most \(settings.concurrency) uploading at once …")
            let row = try fleet.round(agents: k)
            rows.append(row)
            print("K = \(k): uploads \(String(format: "%.1f", row.uploadSeconds)) s, checks+merges \(String(format: "%.1f", row.checkAndMergeSeconds)) s, distribution \(String(format: "%.1f", row.distributionSeconds)) s, aggregator peak \(row.peakBytes / 1_048_576) MiB")
        }
        if !keep { try? FileManager.default.removeItem(atPath: settings.workdir) }
        let methods = settings.methods.map(\.label) + (settings.mats.map { [$0.label] } ?? [])
        let table = FleetTable(
            command: (["fedmerge"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
            revision: ExperimentCommand.revision(executable: executable), date: ISO8601DateFormatter().string(from: started),
            notes: [
                "\(ProcessInfo.processInfo.activeProcessorCount) cores; load average \(loadBefore) before, \(Self.loadAverage()) after; whole sweep \(Int(Date().timeIntervalSince(started))) s including making the contributions.",
                "Source contribution \(source) (weights and statistics of one real fine-tuned MiniLM), perturbed per agent with seeded noise of relative size \(noise); at most \(settings.concurrency) agents upload at once.",
                "Agents: the real agent daemon (`fedmerge bench fleet --agent`, one process each, TLS on loopback) with a fixed evaluation score; a merged model's copies are deleted once scored.",
                "admission+upload: first agent started → every contribution committed in the spool. checks+merges: → every merged model written (plausibility checks of each contribution, then each method's merge). distribute: → every agent received each merged model, was acknowledged for its EVALs and exited.",
                "Peak memory: the aggregator's VmHWM (/proc/<pid>/status, sampled every 0.1 s) when the uploads were in, and at its exit.",
            ] + (settings.mats.map { ["MaTS: objective kfac from the average, \(matsIterations) CG iterations per tensor (enough to hold its per-model K-FAC factors in memory, not to converge), run while K ≤ \($0.upTo)."] } ?? []),
            methods: methods, rows: rows)
        let cells = table.cells
        printTable(header: cells.header, rows: cells.rows)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try Data(table.markdown.utf8).write(to: URL(fileURLWithPath: out + "/fleet.md"), options: .atomic)
        try table.json().write(to: URL(fileURLWithPath: out + "/fleet.json"), options: .atomic)
        print("wrote \(out)/fleet.md and \(out)/fleet.json")
    }

    /// One lightweight agent: the real daemon, `--once`, with FleetWork as its local work.
    private func runAgent(config path: String) throws {
        DaemonLogging.bootstrap(level: .info)
        let config = try DaemonCommand.load(path, AgentConfig.load(file:))
        let daemon = AgentDaemon(config: config, work: FleetWork(config: config), logger: Logger(label: "fedmerge.fleet-agent"))
        StopSignal.install()
        daemon.once = true
        let exit = try daemon.run()
        if exit != .success { throw ExitCode(exit.rawValue) }
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }
}
