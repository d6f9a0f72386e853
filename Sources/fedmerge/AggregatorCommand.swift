// `fedmerge aggregator CONFIG.yaml`: the aggregator service; `fedmerge aggregator forget`: exact removal.

import Aggregator
import ArgumentParser
import DaemonSupport
import Foundation
import Logging
import Protocol

struct AggregatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregator",
        abstract: "Run the aggregator service, or ask it to forget an agent.",
        subcommands: [AggregatorServe.self, AggregatorForget.self],
        defaultSubcommand: AggregatorServe.self
    )
}

/// `fedmerge aggregator CONFIG.yaml [--once]`: the service.
struct AggregatorServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the aggregator service (the default subcommand: `fedmerge aggregator CONFIG`).",
        discussion: """
        Binds `listen` and admits agents whose TLS certificate (signed by the federation CA) names an
        entry of `allow`, the same base model and membership in some merge. Keeps each agent's latest
        contribution (weights and statistics, keyed by the fingerprint of its inputs) in `spool/store/`
        and asks an agent to upload only what it lacks. Every merge file in `merges` (one YAML per
        merge: subset, methods, heads, min_agents, deadline, eval_timeout, audience) and the inline
        `round:` merge runs from the stored contributions once its subset is in (or at its deadline
        with min_agents), writes `output/<merge>/<method>/` and, once its audience has evaluated
        every model, `output/<merge>/report.{json,md,svg}`. A new or changed merge file starts that
        merge (the directory is polled once a second); a removed one stops nothing already written.
        Runs until stopped; with --once, exits when the merges defined at start are complete.
        With `align: {reference, data, attention, residual, feed_forward, max_texts, max_len}` agents
        with another base model (same architecture) are admitted too, and each member's weights and
        statistics are aligned to the reference member's model on `data` (public unlabelled text the
        aggregator holds, never the agents' data) before merging; the merged model is in the
        reference's basis.

        \(DaemonExit.help)
        """
    )

    @Argument(help: "The aggregator config (YAML), e.g. configs/demo/aggregator.yaml.")
    var config: String

    @Flag(help: "Validate the config (and the files it names) and exit.")
    var check = false

    @Flag(help: "Exit once the merges defined at start (e.g. the inline `round:` merge) are complete (exit 3 if one failed).")
    var once = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func run() throws {
        DaemonLogging.bootstrap(level: logLevel)
        let logger = Logger(label: "fedmerge.aggregator")
        let loaded = try DaemonCommand.load(config, AggregatorConfig.load(file:))
        if check {
            try DaemonCommand.requireFiles(of: config, tls: loaded.tls, baseModel: loaded.baseModel)
            let files = MergeFiles(directory: loaded.merges, inline: loaded.inlineMerge, allow: loaded.allow, alignReference: loaded.align?.reference).read(knownIDs: [:], previous: [])
            for error in files.errors { DaemonLogging.fail(error) }
            if !files.errors.isEmpty { throw ExitCode(DaemonExit.badConfig.rawValue) }
            let merges = files.definitions.map { d in
                "\(d.name) (round \(d.id): subset \(d.subset.joined(separator: ", ")); methods \(d.methods.map(\.label).joined(separator: ", ")); statistics: \(d.kinds.isEmpty ? "none" : d.kinds.sorted().map(\.rawValue).joined(separator: ", ")))"
            }
            do { try loaded.tls.check() } catch {
                DaemonLogging.fail("\(config): TLS credentials ('tls') cannot be used: \(error)")
                throw ExitCode(DaemonExit.refused.rawValue)
            }
            print("\(config): OK — merges: \(merges.isEmpty ? "none yet" : merges.joined(separator: "; "))")
            return
        }
        StopSignal.install()
        let exit: DaemonExit
        do { exit = try AggregatorDaemon(config: loaded, once: once, logger: logger).run() } catch {
            DaemonLogging.fail("\(error)")
            throw ExitCode(AggregatorCommand.exitCode(forStartupError: error).rawValue)
        }
        if exit != .success { throw ExitCode(exit.rawValue) }
    }
}

/// `fedmerge aggregator forget NAME --config CONFIG`: exact removal of one agent.
struct AggregatorForget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Delete an agent's stored contribution and re-run every merge that used it.",
        discussion: """
        Leaves a request in the spool's requests/ directory; the running aggregator deletes the agent's
        contributions durably, records it in forgotten.json (it is refused from then on) and merges
        every merge it was a member of again without it. Waits (up to --wait seconds) until the
        aggregator has done so; with no aggregator running, the request waits for the next start.
        """
    )

    @Argument(help: "The agent (certificate name) to forget.")
    var name: String

    @Option(help: "The aggregator config (YAML).")
    var config: String

    @Option(help: "Seconds to wait for the running aggregator to carry the request out.")
    var wait: Double = 60

    func run() throws {
        let loaded = try DaemonCommand.load(config, AggregatorConfig.load(file:))
        guard PortableName.isAgentName(name), loaded.allow.contains(name) else {
            DaemonLogging.fail("\(config): '\(loggable(name))' is not an agent on `allow` (\(loaded.allow.joined(separator: ", ")))")
            throw ExitCode(DaemonExit.badConfig.rawValue)
        }
        try ContributionStore.requestForget(root: loaded.spool, agent: name)
        guard ContributionStore.isServed(root: loaded.spool) else {
            print("no aggregator is serving \(loaded.spool); the request to forget \(name) waits in requests/ for the next start")
            return
        }
        let end = Date().addingTimeInterval(wait)
        while ContributionStore.isForgetPending(root: loaded.spool, agent: name) && Date() < end { Thread.sleep(forTimeInterval: 0.2) }
        if ContributionStore.isForgetPending(root: loaded.spool, agent: name) {
            DaemonLogging.fail("the aggregator did not take the request within \(Int(wait)) s; it stays in \(loaded.spool)/requests/")
            throw ExitCode(DaemonExit.failure.rawValue)
        }
        print("\(name) forgotten: its contribution is deleted; every merge that used it runs again without it (see `fedmerge status \(config)`)")
    }
}

extension AggregatorCommand {
    /// What a failure before or while serving means for the operator: the spool, output or base
    /// model the config names is unusable (2), the TLS set-up failed (4), anything else (1).
    static func exitCode(forStartupError error: Error) -> DaemonExit {
        switch error {
        case is StoreError, is ModelFingerprint.Failure, is ConfigError: .badConfig
        case is TLSError, is TLSCredentialError: .refused
        default: .failure
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// What `fedmerge agent` and `fedmerge aggregator` do alike before their daemon runs.
enum DaemonCommand {
    /// Loads a config, turning any error into its message on stderr and exit code 2.
    static func load<Config>(_ file: String, _ loader: (String) throws -> Config) throws -> Config {
        do { return try loader(file) } catch {
            DaemonLogging.fail("\(error)")
            throw ExitCode(DaemonExit.badConfig.rawValue)
        }
    }

    /// `--check`: the TLS files and the base model a config names must exist.
    static func requireFiles(of file: String, tls: TLSConfiguration, baseModel: String) throws {
        let missing = [tls.caFile, tls.certificateFile ?? "", tls.keyFile ?? "",
                       baseModel + "/config.json", baseModel + "/model.safetensors"]
            .filter { !FileManager.default.fileExists(atPath: $0) }
        guard missing.isEmpty else {
            DaemonLogging.fail("\(file): these files do not exist: \(missing.joined(separator: ", "))")
            throw ExitCode(DaemonExit.badConfig.rawValue)
        }
    }
}
