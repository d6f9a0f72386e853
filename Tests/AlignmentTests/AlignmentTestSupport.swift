// Test support for AlignmentTests: tiny BERTs with every parameter random (biases and LayerNorm
// weights too, so a permutation that forgets one shows), random token batches, random
// function-preserving permutations, and where the real MiniLM lives.

import Foundation
import LinAlg
import XCTest
@testable import Alignment
import Model

enum AlignmentFixtures {
    static func tinyConfig(labels: Int = 3, pooling: BertConfig.Pooling = .cls) -> BertConfig {
        BertConfig(vocabSize: 40, hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 24,
                   maxPositionEmbeddings: 16, labels: (0..<labels).map { "L\($0)" }, pooling: pooling)
    }

    /// A model whose every parameter is random: weights N(0, 0.3²), biases N(0, 0.3²), LayerNorm
    /// weights 1 + N(0, 0.2²).
    static func randomModel(_ config: BertConfig, seed: UInt64) -> BertEncoder {
        let model = BertEncoder(config: config, seed: seed, randomize: false)
        var rng = SplitMix64(seed: seed &+ 77)
        for e in model.parameters.entries {
            let layerNormWeight = e.name.hasSuffix("LayerNorm.weight")
            let t = try! Tensor<Float>(shape: e.shape, storage: (0..<e.count).map { _ in
                layerNormWeight ? Float(1 + 0.2 * rng.nextNormal()) : Float(0.3 * rng.nextNormal())
            })
            model.parameters.set(e.name, from: t)
        }
        return model
    }

    /// A copy of `model` (same config, same weights).
    static func copy(_ model: BertEncoder) -> BertEncoder {
        let out = BertEncoder(config: model.config, seed: 0, randomize: false)
        for e in model.parameters.entries { out.parameters.set(e.name, from: model.parameters.tensor(e.name)!) }
        return out
    }

    /// `batch` sequences of 3…maxLength random non-special ids, right-padded (padding included).
    static func randomBatch(_ config: BertConfig, batch: Int, maxLength: Int, rng: inout SplitMix64) -> EncoderInput {
        let sequences: [[Int32]] = (0..<batch).map { _ in
            let n = 3 + Int(rng.next() % UInt64(maxLength - 2))
            return (0..<n).map { _ in Int32(1 + rng.next() % UInt64(config.vocabSize - 1)) }
        }
        var input = try! EncoderInput(sequences: sequences)
        input.tokenTypeIDs = input.attentionMask.enumerated().map { $0.element != 0 && $0.offset % 3 == 0 ? 1 : 0 }
        return input
    }

    struct Parts: OptionSet {
        let rawValue: Int
        static let feedForward = Parts(rawValue: 1), heads = Parts(rawValue: 2), inner = Parts(rawValue: 4)
        static let residual = Parts(rawValue: 8), separateValueInner = Parts(rawValue: 16)
        static let all: Parts = [.feedForward, .heads, .inner, .residual, .separateValueInner]
    }

    /// A random function-preserving permutation of the chosen parts: one residual P, per layer
    /// FF neurons, an outer head permutation shared by Q, K and V, and inner per-head
    /// permutations (V's own with `.separateValueInner`).
    static func randomPermutation(_ c: BertConfig, parts: Parts, rng: inout SplitMix64) -> BertPermutation {
        var p = BertPermutation(identity: c)
        let (H, d) = (c.numAttentionHeads, c.headSize)
        func maybe(_ part: Parts, _ n: Int) -> Permutation { parts.contains(part) ? Permutation(random: n, using: &rng) : Permutation(identity: n) }
        for l in 0..<c.numHiddenLayers {
            p.layers[l].feedForward = maybe(.feedForward, c.intermediateSize)
            let heads = maybe(.heads, H)
            let innerQK = (0..<H).map { _ in maybe(.inner, d) }
            let innerV = parts.contains(.separateValueInner) ? (0..<H).map { _ in Permutation(random: d, using: &rng) } : innerQK
            p.layers[l].queryKey = Permutation.heads(heads, inner: innerQK, headSize: d)
            p.layers[l].value = Permutation.heads(heads, inner: innerV, headSize: d)
        }
        p.setResidual(maybe(.residual, c.hiddenSize))
        return p
    }

    /// The real MiniLM-L6 directory, or an XCTSkip saying how to get it.
    static func miniLM() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let dir = ProcessInfo.processInfo.environment["FEDMERGE_MINILM_DIR"] ?? root + "/.cache/models/minilm-l6"
        guard FileManager.default.fileExists(atPath: dir + "/model.safetensors") else {
            throw XCTSkip("real MiniLM-L6 not found at \(dir); run `bash scripts/fetch-assets.sh` to enable this test")
        }
        return dir
    }
}

/// max |a − b| / max(1, |b|) over two equal-length arrays.
func maxRelativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count)")
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1) / max(1, abs($1.1))) }
}
