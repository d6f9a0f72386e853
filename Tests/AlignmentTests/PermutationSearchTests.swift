// Tests of ActivationCorrelation.swift and PermutationSearch.swift: aligning a randomly permuted
// copy of a model to the original finds exactly the inverse permutation, for every attention
// choice and every function-preserving residual choice, and restores the weights bit for bit.

import LinAlg
import Model
import XCTest
@testable import Alignment

final class PermutationSearchTests: XCTestCase {
    private func batches(_ config: BertConfig, seed: UInt64) -> [EncoderInput] {
        var rng = SplitMix64(seed: seed)
        return (0..<8).map { _ in AlignmentFixtures.randomBatch(config, batch: 6, maxLength: 12, rng: &rng) }
    }

    /// B = P(A); align B to A with the given choices; the result must be P⁻¹ and undo P exactly.
    private func assertRecovers(parts: AlignmentFixtures.Parts, attention: AttentionAlignment, residual: ResidualAlignment,
                                feedForward: FeedForwardAlignment = .match, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        let config = AlignmentFixtures.tinyConfig(pooling: .mean)
        let a = AlignmentFixtures.randomModel(config, seed: seed)
        var rng = SplitMix64(seed: seed &+ 1)
        let p = AlignmentFixtures.randomPermutation(config, parts: parts, rng: &rng)
        let b = AlignmentFixtures.copy(a)
        try p.apply(to: b)
        var options = AlignmentOptions()
        options.attention = attention
        options.residual = residual
        options.feedForward = feedForward
        let outcome = try ModelAlignment.align(reference: a, model: b, batches: batches(config, seed: seed &+ 2), options: options, dataName: "random")
        let label = "\(attention.rawValue)/\(residual.rawValue)/\(feedForward.rawValue)"
        XCTAssertEqual(outcome.permutation, p.inverse, label, file: file, line: line)
        try outcome.permutation.apply(to: b)
        for e in a.parameters.entries {
            XCTAssertEqual(b.parameters.tensor(e.name), a.parameters.tensor(e.name), "\(label): \(e.name)", file: file, line: line)
        }
        for s in outcome.points {
            XCTAssertEqual(s.after, 1, accuracy: 1e-4, "\(label): \(s.point)", file: file, line: line)
        }
        XCTAssertEqual(outcome.texts, 48, file: file, line: line)
    }

    func testHeadPermRecoversEveryPermutation() throws {
        try assertRecovers(parts: [.feedForward, .heads, .inner, .residual], attention: .headPerm, residual: .all, seed: 1)
        try assertRecovers(parts: [.feedForward, .heads, .inner, .residual], attention: .headPerm, residual: .first, seed: 2)
        try assertRecovers(parts: [.feedForward, .heads, .inner, .residual], attention: .headPerm, residual: .last, seed: 3)
        try assertRecovers(parts: [.feedForward, .heads, .inner], attention: .headPerm, residual: .identity, seed: 4)
        // V with its own inner permutations (Q and K share theirs).
        try assertRecovers(parts: .all, attention: .headPerm, residual: .all, seed: 11)
    }

    func testMonotonicRecoversInnerPermutationsWithHeadsInOrder() throws {
        try assertRecovers(parts: [.feedForward, .inner, .residual], attention: .monotonic, residual: .all, seed: 5)
        try assertRecovers(parts: [.feedForward, .inner], attention: .monotonic, residual: .identity, seed: 6)
        try assertRecovers(parts: [.feedForward, .inner, .separateValueInner, .residual], attention: .monotonic, residual: .first, seed: 12)
    }

    func testIgnoreHeadsAndSeparateRecoverAnExactCopy() throws {
        // An exact copy correlates 1 with its own units only, so even the choices that ignore the
        // model's structure find P⁻¹ (they differ from head_perm/all only between models that differ).
        try assertRecovers(parts: .all, attention: .ignoreHeads, residual: .separate, seed: 7)
    }

    func testVanillaAttentionAndIdentityFeedForwardMoveOnlyTheResidualStream() throws {
        // The paper's residual-only rows: B differs from A by a residual P alone, and aligning
        // with attention and feed-forward left in place recovers P⁻¹ exactly.
        try assertRecovers(parts: [.residual], attention: .vanilla, residual: .all, feedForward: .identity, seed: 13)
        // With feed-forward neurons and heads moved too, those choices leave them where they are.
        let config = AlignmentFixtures.tinyConfig(pooling: .mean)
        let a = AlignmentFixtures.randomModel(config, seed: 14)
        var rng = SplitMix64(seed: 15)
        let p = AlignmentFixtures.randomPermutation(config, parts: .all, rng: &rng)
        let b = AlignmentFixtures.copy(a)
        try p.apply(to: b)
        var options = AlignmentOptions()
        options.attention = .vanilla
        options.feedForward = .identity
        options.residual = .all
        let outcome = try ModelAlignment.align(reference: a, model: b, batches: batches(config, seed: 16), options: options, dataName: "random")
        for l in 0..<config.numHiddenLayers {
            XCTAssertEqual(outcome.permutation.layers[l].feedForward, Permutation(identity: config.intermediateSize))
            XCTAssertEqual(outcome.permutation.layers[l].queryKey, Permutation(identity: config.hiddenSize))
            XCTAssertEqual(outcome.permutation.layers[l].value, Permutation(identity: config.hiddenSize))
            XCTAssertNotEqual(p.layers[l].feedForward, Permutation(identity: config.intermediateSize), "the fixture moved layer \(l)'s neurons")
        }
        XCTAssertEqual(outcome.permutation.embeddings, p.inverse.embeddings)
    }

    func testMonotonicCannotUndoAHeadPermutation() throws {
        // Heads moved: monotonic keeps heads in order, so its result is not P⁻¹ (the check above
        // can fail), while head_perm's is.
        let config = AlignmentFixtures.tinyConfig(pooling: .mean)
        let a = AlignmentFixtures.randomModel(config, seed: 8)
        var p = BertPermutation(identity: config)
        let d = config.headSize
        let heads = try Permutation([1, 0, 3, 2])
        p.layers[0].queryKey = Permutation.heads(heads, inner: Array(repeating: Permutation(identity: d), count: 4), headSize: d)
        p.layers[0].value = p.layers[0].queryKey
        let b = AlignmentFixtures.copy(a)
        try p.apply(to: b)
        var options = AlignmentOptions()
        options.attention = .monotonic
        options.residual = .identity
        let monotonic = try ModelAlignment.align(reference: a, model: b, batches: batches(config, seed: 10), options: options, dataName: "random")
        XCTAssertNotEqual(monotonic.permutation.layers[0].queryKey, p.layers[0].queryKey.inverse)
        options.attention = .headPerm
        let headPerm = try ModelAlignment.align(reference: a, model: b, batches: batches(config, seed: 10), options: options, dataName: "random")
        XCTAssertEqual(headPerm.permutation.layers[0].queryKey, p.layers[0].queryKey.inverse)
    }

    func testDifferentArchitecturesAndNoTokensAreNamed() throws {
        let a = AlignmentFixtures.randomModel(AlignmentFixtures.tinyConfig(), seed: 1)
        var c = AlignmentFixtures.tinyConfig()
        c.intermediateSize = 20
        XCTAssertThrowsError(try ActivationCorrelation(reference: a, model: AlignmentFixtures.randomModel(c, seed: 2))) {
            XCTAssertEqual($0 as? AlignmentError, .architectureMismatch(field: "intermediate_size", reference: 24, model: 20))
        }
        XCTAssertThrowsError(try ModelAlignment.align(reference: a, model: a, batches: [EncoderInput](), options: AlignmentOptions(), dataName: "empty.txt")) {
            XCTAssertEqual($0 as? AlignmentError, .noActivations(path: "empty.txt"))
        }
    }
}
