// `fedmerge bench merge`: RegMean of K = 2, 5, 10 MiniLM-L6-shaped models (random weights,
// random SPD Grams of the real shapes), each K in a fresh subprocess so its peak RSS is its
// own, against numpy in the same run: (a) the official implementation's inverse(ΣG) @ ΣGW
// with all models in memory, (b) streaming sums and a Cholesky solve.

import ArgumentParser
import Experiment
import Foundation
import LinAlg
import Merge

struct BenchMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "RegMean of K MiniLM-L6-shaped models: time and peak RSS per K, against numpy (inverse and Cholesky)."
    )

    @Option(help: "Comma-separated model counts K.")
    var ks = "2,5,10"

    @Option(help: "Encoder layers / hidden / intermediate / vocabulary sizes (MiniLM-L6 by default).")
    var layers = 6
    @Option var hidden = 384
    @Option var intermediate = 1536
    @Option var vocab = 30522

    @Option(help: "Alternating rounds (ours, then numpy inverse and Cholesky at 1 and 2 threads); the fastest of each is reported, with its largest peak RSS.")
    var repeats = 3

    @Flag(help: "Skip the numpy reference.")
    var noReference = false

    @Flag(help: "Also time the serial solve (BLAS threads across one linear at a time).")
    var compareSerial = false

    @Option(help: .hidden)
    var worker: Int?

    @Flag(help: .hidden)
    var serial = false

    func run() throws {
        if let k = worker { return try runWorker(k: k) }
        let kList = ks.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        print("fedmerge bench merge — RegMean (α = 0.9, fp64 sums and solves) of K models: \(layers) layers, hidden \(hidden), intermediate \(intermediate), vocab \(vocab)")
        print("BLAS kernels: ours \(OpenBLASCore.current)" + (blasEnvironment.isEmpty ? "; numpy its own choice" : ", numpy given the same OPENBLAS_CORETYPE")
              + "; numpy runs at 1 and 2 OpenBLAS threads and the faster counts; best of \(repeats) alternating rounds")
        var rows: [[String]] = []
        for k in kList {
            // Alternating rounds (ours, then each numpy variant), best of each series kept, so
            // load from other processes hits every side alike.
            let common = ["--k", "\(k)", "--layers", "\(layers)", "--hidden", "\(hidden)", "--intermediate", "\(intermediate)", "--vocab", "\(vocab)"]
            var series: [String: [[String: Double]]] = [:]
            for _ in 0..<max(repeats, 1) {
                series["ours", default: []].append(try spawnWorker(k: k, serial: false))
                if compareSerial { series["serial", default: []].append(try spawnWorker(k: k, serial: true)) }
                guard !noReference else { continue }
                for mode in ["inverse", "cholesky"] {
                    for threads in [1, 2] {
                        var environment = blasEnvironment
                        environment["OPENBLAS_NUM_THREADS"] = "\(threads)"
                        series[mode, default: []].append(try BenchSupport.runPythonReference(
                            script: "merge_numpy.py", arguments: common + ["--mode", mode], environment: environment))
                    }
                }
            }
            let ours = Self.best(series["ours"]!)
            let oursSerial = series["serial"].map(Self.best)
            let inverse = series["inverse"].map(Self.best)
            let cholesky = series["cholesky"].map(Self.best)
            let t = ours["merge_s"]!
            func ratio(_ r: [String: Double]?) -> String { r.map { BenchSupport.format($0["merge_s"]! / t) + "×" } ?? "-" }
            func seconds(_ r: [String: Double]?) -> String { r.map { BenchSupport.format($0["merge_s"]!) } ?? "-" }
            func rss(_ r: [String: Double]?) -> String { r.map { BenchSupport.format($0["rss_mib"]!, 0) } ?? "-" }
            var row = ["\(k)", BenchSupport.format(t)]
            if compareSerial { row.append(oursSerial.map { BenchSupport.format($0["merge_s"]!) } ?? "-") }
            row += [seconds(inverse), seconds(cholesky), ratio(inverse), ratio(cholesky),
                    BenchSupport.format(ours["rss_mib"]!, 0), rss(inverse), rss(cholesky)]
            rows.append(row)
        }
        var header = ["K", "ours s"]
        if compareSerial { header.append("ours serial s") }
        header += ["numpy inv s", "numpy chol s", "speed vs inv", "speed vs chol", "our peak MiB", "inv peak MiB", "chol peak MiB"]
        printTable(header: header, rows: rows)
        print("Times cover the merge arithmetic only (folding K models in and solving), not generating them.")
        print("speed = numpy time / our time (higher is better; targets ≥ 5× vs inverse, ≥ 1.2× vs Cholesky). Peak = VmHWM / ru_maxrss of each K's own process.")
    }

    /// The fastest run (merge_s) of a series, with the largest peak RSS among them.
    static func best(_ runs: [[String: Double]]) -> [String: Double] {
        var fastest = runs.min { $0["merge_s"]! < $1["merge_s"]! }!
        fastest["rss_mib"] = runs.map { $0["rss_mib"] ?? 0 }.max()
        return fastest
    }

    /// Runs `fedmerge bench merge --worker K` in a fresh process; decodes its last JSON line.
    private func spawnWorker(k: Int, serial: Bool) throws -> [String: Double] {
        try BenchSupport.runReporting(URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath(),
                                      ["bench", "merge", "--worker", "\(k)", "--layers", "\(layers)", "--hidden", "\(hidden)",
                                       "--intermediate", "\(intermediate)", "--vocab", "\(vocab)"] + (serial ? ["--serial"] : []),
                                      environment: blasEnvironment, name: "bench worker for K = \(k)")
    }

    /// One K: generates the models one at a time, folds each into a RegMean accumulator, finishes.
    private func runWorker(k: Int) throws {
        let shapes = MiniLMShapes(layers: layers, hidden: hidden, intermediate: intermediate, vocab: vocab)
        let accumulator = try RegMean(parallel: !serial).makeAccumulator(parameters: ["alpha": .number(0.9)])
        var rng = SplitMix64(seed: 7)
        for i in 0..<k {
            let (model, statistics) = try shapes.randomModel(using: &rng)
            try accumulator.add(model: model, statistics: statistics, weight: 1, name: "m\(i)")
        }
        let result = try accumulator.finish()
        let paths = Set(result.report.tensors.compactMap(\.solvePath)).sorted().joined(separator: ",")
        let object: [String: Any] = ["merge_s": result.report.addSeconds + result.report.finishSeconds,
                                     "add_s": result.report.addSeconds, "finish_s": result.report.finishSeconds,
                                     "rss_mib": Self.peakRSSMiB(), "regmean_tensors": result.report.totals["regmean"] ?? 0]
        FileHandle.standardError.write(Data("worker K=\(k)\(serial ? " serial" : ""): \(String(format: "%.2f", result.report.addSeconds)) s folding, \(String(format: "%.2f", result.report.finishSeconds)) s solving; solve paths \(paths)\n".utf8))
        print(String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self))
    }

    /// The kernel family of this process (chosen at start-up, see LinAlg's OpenBLASCore),
    /// handed to every measured process so ours and numpy run the same kernels.
    private var blasEnvironment: [String: String] {
        ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].map { ["OPENBLAS_CORETYPE": $0] } ?? [:]
    }

    /// VmHWM (peak resident set) of this process, in MiB.
    static func peakRSSMiB() -> Double {
        ProcessMemory.current.map { Double($0.peakBytes) / 1_048_576 } ?? .nan
    }
}

/// The tensor names and shapes of a BERT/MiniLM encoder with a 2-label head (HF names, `bert.` prefix).
struct MiniLMShapes {
    let layers: Int, hidden: Int, intermediate: Int, vocab: Int

    /// (linear, out, in) for every linear that gets a Gram.
    var linears: [(String, Int, Int)] {
        var out: [(String, Int, Int)] = []
        for i in 0..<layers {
            let p = "bert.encoder.layer.\(i)."
            for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"] { out.append((p + n, hidden, hidden)) }
            out.append((p + "intermediate.dense", intermediate, hidden))
            out.append((p + "output.dense", hidden, intermediate))
        }
        out.append(("bert.pooler.dense", hidden, hidden))
        return out
    }

    /// Every other tensor (embeddings, biases, LayerNorms, head).
    var others: [(String, [Int])] {
        var out: [(String, [Int])] = [
            ("bert.embeddings.word_embeddings.weight", [vocab, hidden]), ("bert.embeddings.position_embeddings.weight", [512, hidden]),
            ("bert.embeddings.token_type_embeddings.weight", [2, hidden]),
            ("bert.embeddings.LayerNorm.weight", [hidden]), ("bert.embeddings.LayerNorm.bias", [hidden]),
            ("classifier.weight", [2, hidden]), ("classifier.bias", [2]),
        ]
        for i in 0..<layers {
            let p = "bert.encoder.layer.\(i)."
            for (n, d) in [("attention.self.query", hidden), ("attention.self.key", hidden), ("attention.self.value", hidden),
                           ("attention.output.dense", hidden), ("intermediate.dense", intermediate), ("output.dense", hidden)] {
                out.append((p + n + ".bias", [d]))
            }
            for n in ["attention.output.LayerNorm", "output.LayerNorm"] { out += [(p + n + ".weight", [hidden]), (p + n + ".bias", [hidden])] }
        }
        out.append(("bert.pooler.dense.bias", [hidden]))
        return out
    }

    /// Uniform(−0.1, 0.1) weights; Grams (diag(U(0.5, 1.5)) + U Uᵀ) · 100 with U (d×8) normal: SPD.
    func randomModel(using rng: inout SplitMix64) throws -> (NamedTensors, NamedStatistics) {
        func uniform(_ shape: [Int]) -> Tensor<Float> {
            var t = Tensor<Float>(shape: shape)
            t.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] = Float(Double(rng.next() >> 11) * 0x1p-53 * 0.2 - 0.1) }
            }
            return t
        }
        var model = NamedTensors()
        var stats = NamedTensors()
        var metadata: [String: String] = [:]
        for (n, o, i) in linears {
            model.set(n + ".weight", uniform([o, i]))
            let u = Tensor<Float>(randomNormal: [i, 8], using: &rng)
            var g = Tensor<Float>(shape: [i, i])
            try gemm(u, u, transposeB: true, alpha: 100, into: &g)
            for j in 0..<i { g[j, j] += Float(100 * (0.5 + Double(rng.next() >> 11) * 0x1p-53)) }
            stats.set(n + ".gram", g)
            metadata[n + ".gram.num_rows"] = "100"
        }
        for (n, s) in others { model.set(n, uniform(s)) }
        return (model, NamedStatistics(tensors: stats, metadata: metadata))
    }
}
