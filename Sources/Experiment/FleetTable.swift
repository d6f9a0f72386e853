// The fleet benchmark's result: one row per fleet size K (seconds, bytes, the aggregator's
// peak memory), rendered as a Markdown table and as JSON with the command and revision
// that produced it.

import Foundation

public struct FleetRow: Codable, Equatable, Sendable {
    public var agents: Int
    /// First agent started → every contribution committed in the spool.
    public var uploadSeconds: Double
    /// Per method label, the aggregator's own merge time (report.json).
    public var mergeSeconds: [String: Double]
    /// Last contribution committed → last merged model written (plausibility checks, then every merge).
    public var checkAndMergeSeconds: Double
    /// Last merged model written → every agent has received each merged model, sent its EVALs and exited.
    public var distributionSeconds: Double
    /// The aggregator's VmHWM when every contribution was committed, and at its exit.
    public var peakBytesAfterUploads: UInt64
    public var peakBytes: UInt64
    /// Bytes in spool/store after the round.
    public var spoolBytes: UInt64
    /// Upload payload bytes per agent (report.json's uploads, mean over agents).
    public var uploadBytesPerAgent: UInt64
    /// Methods the row did not run, with why (e.g. mats beyond --mats-up-to).
    public var skipped: [String: String]

    public init(agents: Int, uploadSeconds: Double, mergeSeconds: [String: Double], checkAndMergeSeconds: Double, distributionSeconds: Double,
                peakBytesAfterUploads: UInt64, peakBytes: UInt64, spoolBytes: UInt64, uploadBytesPerAgent: UInt64, skipped: [String: String] = [:]) {
        self.agents = agents
        self.uploadSeconds = uploadSeconds
        self.mergeSeconds = mergeSeconds
        self.checkAndMergeSeconds = checkAndMergeSeconds
        self.distributionSeconds = distributionSeconds
        self.peakBytesAfterUploads = peakBytesAfterUploads
        self.peakBytes = peakBytes
        self.spoolBytes = spoolBytes
        self.uploadBytesPerAgent = uploadBytesPerAgent
        self.skipped = skipped
    }
}

public struct FleetTable: Codable, Equatable, Sendable {
    public var command: String
    public var revision: String
    public var date: String
    /// Free text: machine, load, settings (noise, batch size), what was measured how.
    public var notes: [String]
    /// Method labels in column order.
    public var methods: [String]
    public var rows: [FleetRow]

    public init(command: String, revision: String, date: String, notes: [String], methods: [String], rows: [FleetRow]) {
        self.command = command
        self.revision = revision
        self.date = date
        self.notes = notes
        self.methods = methods
        self.rows = rows
    }

    static func mib(_ bytes: UInt64) -> String { String(format: "%.0f", Double(bytes) / 1_048_576) }
    static func seconds(_ s: Double) -> String { String(format: "%.1f", s) }

    /// Header and cells, shared by the Markdown table and the console.
    public var cells: (header: [String], rows: [[String]]) {
        let header = ["K", "admission+upload s"] + methods.map { "\($0) merge s" }
            + ["checks+merges s", "distribute s", "agg. peak MiB (uploads / all)", "spool MiB", "upload MiB/agent"]
        let rows = self.rows.map { r -> [String] in
            ["\(r.agents)", Self.seconds(r.uploadSeconds)]
                + methods.map { m in r.mergeSeconds[m].map { String(format: "%.2f", $0) } ?? (r.skipped[m] != nil ? "—" : "?") }
                + [Self.seconds(r.checkAndMergeSeconds), Self.seconds(r.distributionSeconds),
                   "\(Self.mib(r.peakBytesAfterUploads)) / \(Self.mib(r.peakBytes))", Self.mib(r.spoolBytes), Self.mib(r.uploadBytesPerAgent)]
        }
        return (header, rows)
    }

    public var markdown: String {
        let (header, rows) = cells
        var lines = ["# Fleet benchmark", "", "`\(command)` at \(revision), \(date).", ""]
        lines += notes.map { "- " + $0 }
        lines += ["", "| " + header.joined(separator: " | ") + " |",
                  "|" + header.indices.map { $0 == 0 ? "---:" : "---:" }.joined(separator: "|") + "|"]
        lines += rows.map { "| " + $0.joined(separator: " | ") + " |" }
        let skipped = self.rows.flatMap { r in r.skipped.sorted { $0.key < $1.key }.map { "K = \(r.agents): \($0.key) not run: \($0.value)" } }
        if !skipped.isEmpty { lines += [""] + skipped.map { "- " + $0 } }
        return lines.joined(separator: "\n") + "\n"
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }
}
