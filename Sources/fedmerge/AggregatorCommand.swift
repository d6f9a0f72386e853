// `fedmerge aggregator CONFIG.yaml`: runs the aggregator daemon for one round.

import Aggregator
import ArgumentParser
import DaemonSupport
import Foundation
import Logging
import Protocol

struct AggregatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregator",
        abstract: "Run the aggregator for one federated merging round.",
        discussion: """
        Binds `listen`, admits agents whose TLS certificate (signed by the federation CA) names an
        entry of `allow`, the same base model and membership in `round.subset`; spools their uploads
        durably under `spool`; merges with every method in `round.methods` once the subset is in (or
        at `round.deadline` with at least `round.min_agents`); sends each merged model back; writes
        `output/round-<id>/report.{json,md,svg}` once every agent has evaluated them.
        Restarting it mid-round reloads committed uploads from the spool and asks only for what is missing.

        \(DaemonExit.help)
        """
    )

    @Argument(help: "The aggregator config (YAML), e.g. configs/aggregator.yaml.")
    var config: String

    @Flag(help: "Validate the config (and the files it names) and exit.")
    var check = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func run() throws {
        DaemonLogging.bootstrap(level: logLevel)
        let logger = Logger(label: "fedmerge.aggregator")
        let loaded = try DaemonCommand.load(config, AggregatorConfig.load(file:))
        if check {
            try DaemonCommand.requireFiles(of: config, tls: loaded.tls, baseModel: loaded.baseModel)
            do { try loaded.tls.check() } catch {
                DaemonLogging.fail("\(config): TLS credentials ('tls') cannot be used: \(error)")
                throw ExitCode(DaemonExit.refused.rawValue)
            }
            print("\(config): OK — round \(loaded.round), subset \(loaded.subset.joined(separator: ", ")), methods \(loaded.methods.map(\.label).joined(separator: ", ")), statistics wanted: \(loaded.wantedStatistics.isEmpty ? "none" : loaded.wantedStatistics.joined(separator: ", "))")
            return
        }
        StopSignal.install()
        let exit: DaemonExit
        do { exit = try AggregatorDaemon(config: loaded, logger: logger).run() } catch {
            DaemonLogging.fail("\(error)")
            throw ExitCode(Self.exitCode(forStartupError: error).rawValue)
        }
        if exit != .success { throw ExitCode(exit.rawValue) }
    }
}

extension AggregatorCommand {
    /// What a failure before or while serving means for the operator: the spool, output or base
    /// model the config names is unusable (2), the TLS set-up failed (4), anything else (1).
    static func exitCode(forStartupError error: Error) -> DaemonExit {
        switch error {
        case is RoundSpoolError, is ModelFingerprint.Failure, is ConfigError: .badConfig
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
