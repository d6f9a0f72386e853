// End-to-end: the aggregator's `align:` (issue 15 item 4) with real daemons. Agent b fine-tunes
// from a base that is a random function-preserving permutation of the aggregator's (another
// base fingerprint): refused without `align`; with it, admitted, aligned to the reference a on
// public text the aggregator holds, and merged — the merged models equal the offline merge of a
// and b's own upload mapped back by the known permutation (the pair in the reference's basis).

import Alignment
import Foundation
import LinAlg
import Merge
import MergeIO
import Model
import SafeTensors
import XCTest

final class AlignedRoundTests: FederationTestCase {
    /// A random function-preserving permutation: one residual P, per layer FF neurons, an outer
    /// head permutation and inner per-head ones (Q/K's shared, V's own).
    static func randomPermutation(_ c: BertConfig, seed: UInt64) -> BertPermutation {
        var rng = SplitMix64(seed: seed)
        var p = BertPermutation(identity: c)
        let (H, d) = (c.numAttentionHeads, c.headSize)
        for l in 0..<c.numHiddenLayers {
            p.layers[l].feedForward = Permutation(random: c.intermediateSize, using: &rng)
            let heads = Permutation(random: H, using: &rng)
            p.layers[l].queryKey = Permutation.heads(heads, inner: (0..<H).map { _ in Permutation(random: d, using: &rng) }, headSize: d)
            p.layers[l].value = Permutation.heads(heads, inner: (0..<H).map { _ in Permutation(random: d, using: &rng) }, headSize: d)
        }
        p.setResidual(Permutation(random: c.hiddenSize, using: &rng))
        return p
    }

    /// `directory`'s model and statistics gathered by `p`, written to `out` with its config.json.
    static func writePermuted(_ directory: String, by p: BertPermutation, to out: String) throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let model = try p.permuted(try ModelFiles.loadModel(directory: directory).tensors)
        try SafeTensorsWriter.write(tensors: model.pairs, metadata: ["format": "pt"], to: out + "/model.safetensors")
        let kinds: Set<StatisticKind> = [.gram, .fisher, .kfacOut, .labelCounts]
        let stats = try p.permuted(try ModelFiles.loadStatistics(path: directory + "/stats.safetensors", model: directory, kinds: kinds))
        try SafeTensorsWriter.write(tensors: stats.tensors.pairs, metadata: stats.metadata, to: out + "/stats.safetensors")
        try FileManager.default.copyItem(atPath: directory + "/config.json", toPath: out + "/config.json")
    }

    func testAnAgentWithAPermutedBaseIsRefusedWithoutAlignAndMergedInTheReferencesBasisWithIt() throws {
        let f = try Federation.make("aligned", agents: ["a", "b"])
        federation = f
        // b's base: the aggregator's base with every kind of unit permuted (same function, other fingerprint).
        let base = try ModelDirectory.load(f.root + "/base")
        let p = Self.randomPermutation(base.config, seed: 17)
        try p.apply(to: base)
        try ModelDirectory.save(base, to: f.root + "/base-perm", tokenizerSource: f.root + "/base")
        let agentB = f.root + "/agent-b.yaml"
        let text = try String(contentsOfFile: agentB, encoding: .utf8)
        XCTAssertTrue(text.contains("base_model: base\n"))
        try text.replacingOccurrences(of: "base_model: base\n", with: "base_model: base-perm\n").write(toFile: agentB, atomically: true, encoding: .utf8)
        // Public unlabelled text the aggregator holds: the federation's words, not an agent's data.
        var rng = SplitMix64(seed: 5)
        let words = Federation.positive + Federation.negative + Federation.domains.values.flatMap { $0 }.sorted() + Federation.filler
        try (0..<300).map { _ in (0..<Int.random(in: 4...12, using: &rng)).map { _ in words.randomElement(using: &rng)! }.joined(separator: " ") }
            .joined(separator: "\n").write(toFile: f.root + "/public.txt", atomically: true, encoding: .utf8)

        // Without `align`: b is refused at HELLO for its base model (exit 4).
        try f.writeAggregatorConfig(subset: ["a", "b"], allow: ["a", "b"], methods: Federation.threeMethods)
        try f.start("plain", ["aggregator", "aggregator.yaml"])
        try f.start("b-refused", ["agent", "agent-b.yaml", "--once", "--connect-timeout", "120"])
        XCTAssertEqual(f.wait("b-refused", limit: 300), 4, f.log("b-refused"))
        XCTAssertTrue(f.log("plain").contains("different base model"), f.log("plain"))
        f.kill("plain", signal: SIGTERM)

        // With `align` (reference a): both admitted, b aligned to a, merged.
        let config = try f.writeAggregatorConfig(subset: ["a", "b"], allow: ["a", "b"], methods: Federation.threeMethods)
        try (String(contentsOfFile: config, encoding: .utf8) + "\nalign: {reference: a, data: public.txt, attention: head_perm, residual: all, feed_forward: match, max_texts: 300, max_len: 16}\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        try f.start("aggregator", ["aggregator", "aggregator.yaml", "--once"])
        for agent in ["a", "b"] { try f.start(agent, ["agent", "agent-\(agent).yaml", "--once", "--connect-timeout", "120"]) }
        XCTAssertEqual(f.wait("aggregator"), 0, "the aggregator completes the aligned round")
        for agent in ["a", "b"] { XCTAssertEqual(f.wait(agent, limit: 60), 0, "agent \(agent) finishes") }
        let log = f.log("aggregator")
        XCTAssertTrue(log.contains("agent admitted with a different base model"), log)
        XCTAssertTrue(log.contains("member aligned to the reference"), log)
        XCTAssertFalse(log.contains("quarantine"), log)
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.root + "/output/round-1/alignment-b.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root + "/output/round-1/.aligned"), "aligned copies are scratch")

        // The truth: b's own upload mapped back by the known permutation, merged offline with a's.
        let b = try XCTUnwrap(f.contributionDirectory("b"))
        try Self.writePermuted(b, by: p.inverse, to: f.root + "/b-unpermuted")
        for (method, parameters) in [("regmean", "{alpha: 0.9}"), ("fisher", "{}"), ("average", "{}")] {
            try ("merge_method: \(method)\nmodels:\n  - {model: \(f.relativeContribution("a")), name: a}\n  - {model: b-unpermuted, name: b}\nparameters: \(parameters)\n")
                .write(toFile: f.root + "/truth-\(method).yaml", atomically: true, encoding: .utf8)
            try f.start("truth-\(method)", ["merge", "truth-\(method).yaml", "--out", "truth-\(method)"])
            XCTAssertEqual(f.wait("truth-\(method)", limit: 120), 0, f.log("truth-\(method)"))
            let difference = try Federation.maxDifference(f.root + "/output/round-1/\(method)/model.safetensors", f.root + "/truth-\(method)/model.safetensors")
            print("aligned round, \(method): max |merged − merge of the unpermuted pair| = \(difference)")
            // Same inputs in the same order, gathers are exact: equal up to BLAS summation order.
            XCTAssertLessThanOrEqual(difference, 1e-5, method)
        }
        // The check can fail: merging b's upload as it is (another basis) gives another model.
        try ("merge_method: average\nmodels:\n  - {model: \(f.relativeContribution("a")), name: a}\n  - {model: \(f.relativeContribution("b")), name: b}\nparameters: {}\n")
            .write(toFile: f.root + "/unaligned.yaml", atomically: true, encoding: .utf8)
        try f.start("unaligned", ["merge", "unaligned.yaml", "--out", "unaligned"])
        XCTAssertEqual(f.wait("unaligned", limit: 120), 0, f.log("unaligned"))
        XCTAssertGreaterThan(try Federation.maxDifference(f.root + "/output/round-1/average/model.safetensors", f.root + "/unaligned/model.safetensors"), 1e-3)
    }
}
