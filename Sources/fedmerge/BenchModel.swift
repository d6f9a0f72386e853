// `fedmerge bench model`: in one run, this machine's sgemm throughput, a MiniLM-L6 fine-tuning
// step (batch 16, length 128) as achieved GFLOP/s and its ratio to sgemm, and the Gram
// collection pass over a plain no-grad forward.

import ArgumentParser
import Foundation
import LinAlg
import Model

struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Fine-tuning step GFLOP/s vs sgemm GFLOP/s, and Gram-collection forward vs plain forward (MiniLM-L6 shapes)."
    )

    @Option(help: "Model directory; without it a random model with MiniLM-L6's shapes is used (same FLOPs).")
    var model: String?
    @Option(help: "Examples per step.") var batchSize = 16
    @Option(help: "Tokens per example (all real, no padding).") var length = 128
    @Option(help: "Timed repetitions (the best is reported).") var repeats = 3
    @Option(help: "Matrix size for the sgemm reference.") var gemmSize = 1024

    func run() throws {
        let base: BertEncoder
        if let model {
            base = try ModelDirectory.load(model)
        } else {
            base = BertEncoder(config: BertConfig(vocabSize: 30522, hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12,
                                                  intermediateSize: 1536), seed: 1)
        }
        let encoder = BertEncoder(base: base, labels: ["negative", "positive"], problemType: .singleLabel, pooling: .cls, seed: 2)
        let c = encoder.config
        let (B, T, C, I, L) = (batchSize, length, c.hiddenSize, c.intermediateSize, c.numHiddenLayers)

        // sgemm reference: n×n·n×n at the process's thread count.
        var rng = SplitMix64(seed: 3)
        let n = gemmSize
        let a = Tensor<Float>(randomNormal: [n, n], using: &rng), b = Tensor<Float>(randomNormal: [n, n], using: &rng)
        var out = Tensor<Float>(shape: [n, n])
        let sgemm = 2 * pow(Double(n), 3) / 1e9 / (try BenchSupport.bestTime(repeats: repeats) { try gemm(a, b, into: &out) })

        // One batch of random real tokens (ids 1000..<29000 avoid special tokens), no padding.
        var ids: [Int32] = []
        for _ in 0..<(B * T) { ids.append(Int32(1000 + Int(rng.next() % 28000))) }
        let input = try EncoderInput(batchSize: B, sequenceLength: T, inputIDs: ids, attentionMask: [Int32](repeating: 1, count: B * T))
        let labels = (0..<B).map { Int32($0 % 2) }

        // FLOPs of one forward: linears 2·N·Σ d_in·d_out, attention 2·2·B·T²·C per layer (QKᵀ and PV), head ~0.
        let tokens = Double(B * T)
        let forwardFlops = Double(L) * (2 * tokens * Double(4 * C * C + 2 * C * I) + 4 * Double(B) * Double(T * T) * Double(C))
        // Backward costs two matmuls per forward matmul (input and weight gradients).
        let stepFlops = 3 * forwardFlops
        let p = encoder.parameters
        let optimizer = AdamW(config: AdamWConfig(learningRate: 1e-5), parameterSizes: p.entries.map(\.count))
        let slices = p.entries.map { UnsafeMutableBufferPointer(rebasing: p.values[$0.offset..<($0.offset + $0.count)]) }
        let grads = p.entries.map { UnsafeBufferPointer(rebasing: p.gradients[$0.offset..<($0.offset + $0.count)]) }
        let decay = p.entries.map(\.decays)
        let step = try BenchSupport.bestTime(repeats: repeats) {
            p.zeroGradients()
            try encoder.lossAndGradients(input, targets: .classes(labels), training: true)
            _ = clipGradientNorm([p.gradients], maxNorm: 1)
            optimizer.step(parameters: slices, gradients: grads, learningRate: 1e-5, decayMask: decay)
        }
        let stepGflops = stepFlops / 1e9 / step

        // Plain and Gram-collecting forwards alternate, best of each, so a burst of load from
        // other processes does not land on one side only.
        let gram = GramCollector()
        var plain = Double.infinity, withGram = Double.infinity
        for r in 0...repeats {
            for collecting in [false, true] {
                encoder.collectors = collecting ? [gram] : []
                let start = DispatchTime.now().uptimeNanoseconds
                try encoder.forward(input)
                let t = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if r > 0 { if collecting { withGram = min(withGram, t) } else { plain = min(plain, t) } } // r = 0 warms up
            }
        }
        encoder.collectors = []
        // syrk work per layer: N·(C² for q/k/v shared + C² + C² + I²) multiply-adds, i.e. N·d² flops each.
        let syrkFlops = Double(L) * tokens * Double(3 * C * C + I * I)

        print("fedmerge bench model — \(model ?? "random MiniLM-L6 shapes"), batch \(B) × length \(T), OpenBLAS \(OpenBLASCore.current) kernels × \(BLAS.threads) threads")
        printTable(header: ["measure", "value", "reference", "ratio", "target"], rows: [
            ["sgemm \(n)³ GFLOP/s", BenchSupport.format(sgemm, 1), "-", "-", "-"],
            ["fine-tuning step (fwd+bwd+AdamW), s", BenchSupport.format(step, 3), "-", "-", "-"],
            ["fine-tuning step GFLOP/s vs sgemm", BenchSupport.format(stepGflops, 1), BenchSupport.format(sgemm, 1),
             BenchSupport.format(stepGflops / sgemm), "≥ 0.50"],
            ["no-grad forward, s", BenchSupport.format(plain, 3), "-", "-", "-"],
            ["Gram-collecting forward vs plain", BenchSupport.format(withGram, 3), BenchSupport.format(plain, 3),
             BenchSupport.format(withGram / plain), "≤ 1.15"],
            ["  FLOP ratio (forward + syrk) / forward", BenchSupport.format((forwardFlops + syrkFlops) / forwardFlops), "-", "-", "-"],
        ])
        print("Step FLOPs counted as 3× the forward's matmul FLOPs (\(BenchSupport.format(stepFlops / 1e9, 1)) GFLOP). The Gram pass adds one syrk per linear input; output.dense's Gram is I×I = 1536², so the pass's FLOPs alone are the ratio in the last row.")
    }
}
