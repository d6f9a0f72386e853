// Test support for the statistics tests: a tiny classifier and a collector that captures the
// raw input rows each linear sees.

import LinAlg
@testable import Model

/// Records every observed input row per linear (the independent side of the Gram test).
final class InputCapture: StatisticsCollector {
    let needsInputs = true
    let needsBackward = false
    var rows: [String: [[Float]]] = [:]
    func observeInput(of sites: [LinearSite], rows r: UnsafePointer<Float>, count: Int) {
        for s in sites {
            for i in 0..<count { rows[s.name, default: []].append(Array(UnsafeBufferPointer(start: r + i * s.inDim, count: s.inDim))) }
        }
    }
    func export(naming name: (String) -> String) -> (tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String]) { ([], [:]) }
}

func tinyStatisticsModel(labels: Int = 2, problem: BertConfig.ProblemType = .singleLabel) -> BertEncoder {
    let c = BertConfig(vocabSize: 30, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 12,
                       maxPositionEmbeddings: 16, initializerRange: 0.4, labels: (0..<labels).map { "L\($0)" }, problemType: problem)
    return BertEncoder(config: c, seed: 21)
}

/// Adds N(0, 0.2²) noise (seeded) to every bias and LayerNorm parameter of `m`, so finite-difference
/// checks exercise their gradients rather than the initialiser's zeros and ones.
func perturbBiasesAndLayerNorms(_ m: BertEncoder, seed: UInt64 = 99) {
    var rng = SplitMix64(seed: seed)
    for e in m.parameters.entries where e.name.hasSuffix(".bias") || e.name.contains("LayerNorm") {
        let v = m.parameters.values.baseAddress! + e.offset
        for i in 0..<e.count { v[i] += Float(rng.nextNormal() * 0.2) }
    }
}
