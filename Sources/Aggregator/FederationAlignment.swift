// FederationAlignment: the aggregator's `align:` section (issue 15 item 4). With it, agents
// whose base model differs from the aggregator's are admitted (their config.json must still
// describe the base architecture), and before each merge every member's contribution is
// aligned to the reference member's model on public unlabelled text the aggregator holds —
// never the agents' data — its weights and statistics permuted alike (Alignment's
// ContributionAlignment), so the merge methods run unchanged in the reference's basis.

import Alignment
import AtomicIO
import DaemonSupport
import Foundation
import Logging
import Merge
import MergeIO
import Model
import Protocol

public struct FederationAlignment: Sendable {
    /// The member whose basis every other member is aligned to (and the merged model is in).
    public var reference: String
    /// Public unlabelled text (plain lines, CSV with a `text` column, or JSONL).
    public var data: String
    public var attention: AttentionAlignment
    public var residual: ResidualAlignment
    public var feedForward: FeedForwardAlignment
    public var maxTexts: Int
    public var maxLength: Int

    public static let keys = ["reference", "data", "attention", "residual", "feed_forward", "max_texts", "max_len"]
    /// Where a merge's aligned copies are written (and removed after the merge): hidden, so it
    /// can never be taken for a method's output directory.
    public static let scratch = ".aligned"

    /// Reads `align:`. The reference must be on `allow`; the data file must exist now (the
    /// aggregator reads it at every merge, and a missing one should stop it at start).
    static func read(_ section: ConfigReader, allow: [String]) throws -> FederationAlignment {
        try section.onlyKeys(keys)
        let reference = try section.string("reference", help: "the agent (certificate name) whose model every other member is aligned to")
        guard allow.contains(reference) else {
            throw ConfigError.invalid(file: section.file, key: section.key("reference"), value: "'\(loggable(reference))'",
                                      allowed: "a name listed under 'allow' (\(allow.joined(separator: ", ")))")
        }
        let data = try section.path("data", help: "public unlabelled text the aggregator aligns members on (never the agents' data)")
        guard FileManager.default.isReadableFile(atPath: data) else {
            throw ConfigError.invalid(file: section.file, key: section.key("data"), value: "'\(data)'", allowed: "a readable text file (plain, .csv with a text column, or .jsonl)")
        }
        func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type, default value: T) throws -> T where T.RawValue == String {
            T(rawValue: try section.choice(key, T.allCases.map(\.rawValue), default: value.rawValue))!
        }
        return FederationAlignment(reference: reference, data: data,
                                   attention: try choice("attention", AttentionAlignment.self, default: .headPerm),
                                   residual: try choice("residual", ResidualAlignment.self, default: .all),
                                   feedForward: try choice("feed_forward", FeedForwardAlignment.self, default: .match),
                                   maxTexts: try section.int("max_texts", default: 4000, range: 1...1_000_000),
                                   maxLength: try section.int("max_len", default: 128, range: 2...4096))
    }

    var options: Alignment.AlignmentOptions {
        var o = Alignment.AlignmentOptions()
        o.attention = attention; o.residual = residual; o.feedForward = feedForward
        o.maxTexts = maxTexts; o.maxLength = maxLength
        return o
    }

    /// The merge loop's inputs for `members` (agent → contribution directory), in name order:
    /// the reference's contribution as stored, every other member's aligned to it and written
    /// under `scratch` (the caller removes it after merging). The tokenizer is the aggregator's
    /// base model's: members share its vocabulary size (ContributionCheck), and the text is
    /// the aggregator's own. Each aligned member's alignment.json (its permutation, and the
    /// mean correlation of matched units before and after) is kept as
    /// `reports/alignment-<agent>.json`.
    func alignedInputs(merge: String, members: [(agent: String, directory: String)], baseModel: String, scratch: String,
                       reports: String, logger: Logger) throws -> [MergeInput] {
        guard let referenceDirectory = members.first(where: { $0.agent == reference })?.directory else {
            throw FederationAlignmentError.referenceMissing(merge: merge, reference: reference, members: members.map(\.agent))
        }
        let model = try ModelDirectory.load(referenceDirectory)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: baseModel + "/vocab.txt")
        let batches = try ContributionAlignment.batches(data: data, tokenizer: tokenizer, maxPositions: model.config.maxPositionEmbeddings, options: options)
        try? FileManager.default.removeItem(atPath: scratch)
        var inputs: [MergeInput] = []
        for (agent, directory) in members.sorted(by: { $0.agent < $1.agent }) {
            guard agent != reference else {
                inputs.append(MergeInput(name: agent, modelDirectory: directory))
                continue
            }
            let out = scratch + "/" + agent
            let outcome: AlignmentOutcome
            do {
                outcome = try ContributionAlignment.write(reference: model, referenceName: reference, directory: directory, batches: batches,
                                                          options: options, dataName: data, out: out)
            } catch {
                throw FederationAlignmentError.alignmentFailed(merge: merge, agent: agent, reason: "\(error)")
            }
            if let report = FileManager.default.contents(atPath: out + "/alignment.json") {
                try AtomicFile.write(report, to: reports + "/alignment-\(agent).json")
            }
            let moved = outcome.points.filter { $0.after > $0.before + 1e-9 }.count
            logger.info("member aligned to the reference", metadata: [
                "merge": "\(merge)", "agent": "\(agent)", "reference": "\(reference)", "tokens": "\(outcome.tokens)",
                "points_improved": "\(moved)/\(outcome.points.count)",
                "mean_correlation_after": "\(String(format: "%.4f", outcome.points.map(\.after).reduce(0, +) / Double(max(outcome.points.count, 1))))"])
            inputs.append(MergeInput(name: agent, modelDirectory: out))
        }
        return inputs
    }
}

public enum FederationAlignmentError: Error, CustomStringConvertible {
    /// The merge's snapshot lacks the reference (it was not ready by the deadline).
    case referenceMissing(merge: String, reference: String, members: [String])
    case alignmentFailed(merge: String, agent: String, reason: String)

    public var description: String {
        switch self {
        case let .referenceMissing(merge, reference, members):
            return "merge \(merge): the alignment reference '\(reference)' is not among the members merged (\(members.sorted().joined(separator: ", "))); every other member is aligned to it, so the merge cannot run without it"
        case let .alignmentFailed(merge, agent, reason):
            return "merge \(merge): aligning agent \(agent)'s contribution to the reference failed: \(reason)"
        }
    }
}
