// `fedmerge bench …`: performance measurements. Each prints ratios against a reference
// measured in the same run (numpy, or a plain baseline), never bare times alone.

import ArgumentParser
import Foundation

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure performance against a reference run in the same process or script.",
        discussion: "Build with `swift build -c release` first; debug builds are not representative.",
        subcommands: [
            BenchLinAlg.self,
            BenchModel.self,
            BenchWire.self,
            BenchTokenizer.self,
            BenchMerge.self,
            BenchFleet.self,
            BenchWorkload.self,
        ]
    )
}

/// Shared helpers for the bench subcommands.
enum BenchSupport {
    /// Best (minimum) wall time in seconds of `repeats` runs of `body`, after one warm-up.
    static func bestTime(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        var best = Double.infinity
        for _ in 0..<max(repeats, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    /// Runs a Python reference script (from scripts/bench) and decodes the JSON object it
    /// prints on its last line of standard output.
    static func runPythonReference(script: String, arguments: [String], environment: [String: String] = [:]) throws -> [String: Double] {
        let path = try locateScript(script)
        return try runReporting(URL(fileURLWithPath: "/usr/bin/env"), ["python3", path] + arguments,
                                environment: environment, name: "reference script \(path)")
    }

    /// Runs `executable` with `arguments` (and extra `environment`), waits, and decodes the
    /// JSON object of numbers it prints on its last line of standard output.
    static func runReporting(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                             name: String) throws -> [String: Double] {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(name) exited with status \(process.terminationStatus)")
        }
        guard let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let object = try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
            throw ValidationError("\(name) printed no JSON object on its last line")
        }
        return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    /// Finds scripts/bench/NAME from the working directory or the executable's checkout.
    static func locateScript(_ name: String) throws -> String {
        var candidates = [FileManager.default.currentDirectoryPath]
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 { candidates.append(dir.path); dir.deleteLastPathComponent() }
        for root in candidates {
            let path = root + "/scripts/bench/" + name
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw ValidationError("cannot find scripts/bench/\(name); run fedmerge from the repository root")
    }

    static func format(_ value: Double, _ digits: Int = 2) -> String {
        String(format: "%.\(digits)f", value)
    }
}
