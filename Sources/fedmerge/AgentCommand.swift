// `fedmerge agent CONFIG.yaml`: runs one agent next to its private data: enrolled for every
// merge it takes part in, or for one with `--once`.

import Agent
import ArgumentParser
import DaemonSupport
import Foundation
import Logging

struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run an agent: fine-tune on local data, upload weights and statistics, evaluate merged models.",
        discussion: """
        Connects to `aggregator` over TLS 1.3 with its certificate, learns which statistics the
        round's methods need, fine-tunes `base_model` on `data.train` (or loads `finetuned`),
        computes the statistics (Grams for regmean, Fisher for fisher, K-FAC output factors for
        mats with objective kfac) and uploads model and statistics. Then it evaluates each merged model
        it receives, and its own model, on `data.test` and reports the metrics. Nothing else leaves the machine.
        Work is kept in `workdir` and reused on restart when the config is unchanged; an
        interrupted upload resumes from the last acknowledged byte. Without `--once` the agent
        stays enrolled after a merge: it keeps its link, uploads again only when its contribution
        changed, and evaluates each further merge it is sent for until stopped.

        \(DaemonExit.help)
        """
    )

    @Argument(help: "The agent config (YAML), e.g. configs/agents/movies.yaml.")
    var config: String

    @Flag(help: "Validate the config and the files it names (data files read through, base model, workdir, TLS credentials) and exit.")
    var check = false

    @Option(help: "With --once: seconds to keep retrying when the aggregator is unreachable, counted from the loss of the link (from the start until first admitted); then exit 1. An enrolled agent (no --once) retries for as long as it runs, 1 s doubling to 60 s between attempts.")
    var connectTimeout: Double = 600

    @Flag(help: "Serve one merge, then exit (0 when every model was evaluated). Without it the agent stays enrolled and evaluates every merge it is sent for until stopped.")
    var once = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    @Option(help: .hidden) var chunkSize: Int?
    #if DEBUG
    /// Fault injection for the end-to-end tests (they run the debug build): exit abruptly with
    /// status 99 once this many upload bytes left. Absent from release builds.
    @Option(help: .hidden) var crashAfterBytes: Int?
    #endif

    func run() throws {
        DaemonLogging.bootstrap(level: logLevel)
        let logger = Logger(label: "fedmerge.agent")
        let loaded = try DaemonCommand.load(config, AgentConfig.load(file:))
        let work = try DaemonCommand.load(config) { _ in try ModelWork(config: loaded) }
        let daemon = AgentDaemon(config: loaded, work: work, logger: logger)
        if check {
            try DaemonCommand.requireFiles(of: config, tls: loaded.tls, baseModel: loaded.baseModel)
            try Self.exitOnStartError {
                try work.checkData()
                try daemon.checkStartUp()
            }
            print("\(config): OK — agent \(loaded.name), \(work.summary)")
            return
        }
        try Self.exitOnStartError { try work.checkData() }
        StopSignal.install()
        daemon.connectTimeout = connectTimeout
        daemon.once = once
        if let chunkSize { daemon.chunkSize = chunkSize }
        #if DEBUG
        if let limit = crashAfterBytes {
            daemon.uploadObserver = { sent in
                guard sent >= limit else { return }
                logger.critical("fault injection: exiting after \(sent) upload bytes")
                _exit(99)
            }
        }
        #endif
        let exit = try Self.exitOnStartError {
            do { return try daemon.run() } catch let error as AgentStartError { throw error } catch {
                DaemonLogging.fail("\(error)")
                Self.endIfJobRunning(daemon, .failure)
                throw ExitCode(DaemonExit.failure.rawValue)
            }
        }
        Self.endIfJobRunning(daemon, exit)
        if exit != .success { throw ExitCode(exit.rawValue) }
    }

    /// Stopped (signal, --once done, a failure) while the worker still trains or scores: nothing
    /// waits for that job, and every file it writes lands whole (temporary name, fsync, rename),
    /// so the process ends here rather than run exit handlers beside it (OpenBLAS's crashed).
    private static func endIfJobRunning(_ daemon: AgentDaemon, _ exit: DaemonExit) {
        guard daemon.hasRunningJob else { return }
        Logger(label: "fedmerge.agent").notice("leaving the unfinished background job; its partial work is not kept")
        fflush(nil)
        _exit(exit.rawValue)
    }

    /// Start-up failures end the command with their named reason and exit code (2 for the
    /// config's files and workdir, 4 for TLS credentials: AgentStartError.exit).
    private static func exitOnStartError<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as AgentStartError {
            DaemonLogging.fail(error.description)
            throw ExitCode(error.exit.rawValue)
        }
    }
}
