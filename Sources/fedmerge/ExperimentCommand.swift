// `fedmerge experiment CONFIG`: run one setting of the RegMean paper's evaluation through the
// real daemons and write results/<name>/report.{md,json} and SVG charts.

import ArgumentParser
import Experiment
import Foundation

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run a paper-style evaluation (configs/experiments/*.yaml) through real daemons on loopback.",
        discussion: """
        Prepares seeded data splits, makes certificates, starts the aggregator and one agent per
        domain/task as processes on 127.0.0.1 for every round, scores individual models, the
        ensemble, held-out domains and an MTL model itself, and writes the report.
        Example: fedmerge experiment configs/experiments/vader-domains.yaml
        """
    )

    @Argument(help: "The experiment config (YAML).")
    var config: String

    func run() throws {
        // Absolute, so the paths written into the daemons' configs resolve from anywhere.
        let parsed = try ExperimentConfig.load(file: URL(fileURLWithPath: config).standardizedFileURL.path)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let resolved = FileManager.default.fileExists(atPath: executable) ? executable
            : (Bundle.main.executablePath ?? CommandLine.arguments[0])
        let command = "fedmerge experiment " + config
        try ExperimentRunner(config: parsed, executable: resolved, command: command, revision: Self.revision(executable: resolved)).run()
    }

    /// `git rev-parse --short HEAD` (with "+dirty" when the tree has changes), or "unknown"; given the
    /// running binary, also the commits that changed Sources/ or Package.swift after it was built
    /// (HEAD alone would claim them for a binary that predates them).
    static func revision(executable: String? = nil) -> String {
        func git(_ args: [String]) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git"] + args
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return nil }
            let out = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return p.terminationStatus == 0 ? String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }
        guard let head = git(["rev-parse", "--short", "HEAD"]) else { return "unknown" }
        let dirty = git(["status", "--porcelain", "--untracked-files=no", "--", "Sources", "Package.swift"]).map { !$0.isEmpty } ?? false
        var revision = head + (dirty ? "+dirty" : "")
        if let executable, let built = (try? FileManager.default.attributesOfItem(atPath: executable))?[.modificationDate] as? Date,
           let later = git(["log", "--format=%h", "--since=\(Int(built.timeIntervalSince1970))", "--", "Sources", "Package.swift"]), !later.isEmpty {
            let commits = later.split(separator: "\n")
            revision += " (binary built \(ISO8601DateFormatter().string(from: built)), before \(commits.count) later commit(s) changing Sources: \(commits.joined(separator: ", ")))"
        }
        return revision
    }
}
