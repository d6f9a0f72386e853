// `fedmerge bench linalg`: sgemm/dgemm throughput at 1 and 2 threads and a fp64 Cholesky
// solve, each against numpy on the same machine in the same run.

import ArgumentParser
import Foundation
import LinAlg

struct BenchLinAlg: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "linalg",
        abstract: "sgemm/dgemm GFLOP/s (1 and 2 threads) and a Cholesky solve, against numpy."
    )

    @Option(help: "Matrix size n for the n×n·n×n gemm.")
    var gemmSize = 2048

    @Option(help: "Matrix size d for the SPD solve (d×d with the right-hand sides below).")
    var solveSize = 1536

    @Option(help: "Number of right-hand sides for the solve.")
    var rightHandSides = 384

    @Option(help: "Timed repetitions (the best is reported).")
    var repeats = 5

    @Option(help: "Alternating rounds of ours-then-numpy; the best of each side is kept, so load from other processes hits both alike.")
    var rounds = 2

    @Flag(help: "Skip the numpy reference (prints our figures only).")
    var noReference = false

    func run() throws {
        var rng = SplitMix64(seed: 42)
        let n = gemmSize
        let aF = Tensor<Float>(randomNormal: [n, n], using: &rng)
        let bF = Tensor<Float>(randomNormal: [n, n], using: &rng)
        var cF = Tensor<Float>(shape: [n, n])
        let aD = aF.converted(to: Double.self), bD = bF.converted(to: Double.self)
        var cD = Tensor<Double>(shape: [n, n])
        let flops = 2 * pow(Double(n), 3)

        // SPD system: A = XᵀX/rows + I (d×d), B random (d×rhs).
        let d = solveSize
        let x = Tensor<Double>(randomNormal: [2 * d, d], using: &rng)
        var spd = Tensor<Double>.identity(d)
        try syrkAccumulate(x, alpha: 1 / Double(2 * d), into: &spd)
        let rhs = Tensor<Double>(randomNormal: [d, rightHandSides], using: &rng)
        var path = ""

        // Best over rounds (GFLOP/s: maximum; times: minimum), ours and numpy alternating.
        var ours: [String: Double] = [:]
        var reference: [String: [String: Double]] = [:]
        func keepBest(_ table: inout [String: Double], _ key: String, _ value: Double) {
            let higherIsBetter = key.contains("gflops")
            table[key] = table[key].map { higherIsBetter ? max($0, value) : min($0, value) } ?? value
        }
        for _ in 0..<max(rounds, 1) {
            for threads in [1, 2] {
                BLAS.setThreads(threads)
                keepBest(&ours, "sgemm_gflops_\(threads)t", flops / 1e9 / (try BenchSupport.bestTime(repeats: repeats) { try gemm(aF, bF, into: &cF) }))
                keepBest(&ours, "dgemm_gflops_\(threads)t", flops / 1e9 / (try BenchSupport.bestTime(repeats: repeats) { try gemm(aD, bD, into: &cD) }))
            }
            BLAS.setThreads(2)
            keepBest(&ours, "cholesky_solve_s", try BenchSupport.bestTime(repeats: repeats) {
                path = try solveSymmetric(spd, rhs).path.description
            })
            guard !noReference else { continue }
            for threads in [1, 2] {
                let run = try BenchSupport.runPythonReference(
                    script: "linalg_numpy.py",
                    arguments: ["--gemm-size", "\(n)", "--solve-size", "\(d)", "--rhs", "\(rightHandSides)", "--repeats", "\(repeats)"],
                    environment: ["OPENBLAS_NUM_THREADS": "\(threads)", "OMP_NUM_THREADS": "\(threads)"])
                var table = reference["\(threads)"] ?? [:]
                for (k, v) in run { keepBest(&table, k, v) }
                reference["\(threads)"] = table
            }
        }
        print("fedmerge bench linalg — OpenBLAS \(OpenBLASCore.current) kernels via LinAlg (gemm n=\(n); solve d=\(d), \(rightHandSides) rhs, fp64, path \(path); best of \(rounds) alternating rounds)")
        let header = ["measure", "fedmerge", "numpy", "ours/numpy"]
        var rows: [[String]] = []
        for threads in [1, 2] {
            for op in ["sgemm", "dgemm"] {
                let key = "\(op)_gflops_\(threads)t"
                let mine = ours[key]!
                if let theirs = reference["\(threads)"]?["\(op)_gflops"] {
                    rows.append(["\(op) GFLOP/s, \(threads) thread(s)", BenchSupport.format(mine, 1), BenchSupport.format(theirs, 1), BenchSupport.format(mine / theirs)])
                } else {
                    rows.append(["\(op) GFLOP/s, \(threads) thread(s)", BenchSupport.format(mine, 1), "-", "-"])
                }
            }
        }
        let solve = ours["cholesky_solve_s"]!
        if let theirs = reference["2"]?["cholesky_solve_s"] {
            // A time: ours/numpy as a speed ratio is numpy_time / our_time (higher is better).
            rows.append(["Cholesky solve, ms (speed ratio)", BenchSupport.format(solve * 1e3, 1), BenchSupport.format(theirs * 1e3, 1), BenchSupport.format(theirs / solve)])
        } else {
            rows.append(["Cholesky solve, ms", BenchSupport.format(solve * 1e3, 1), "-", "-"])
        }
        printTable(header: header, rows: rows)
        print("Ratios are throughput ratios (higher is better; target ≥ 0.90). numpy runs its own OpenBLAS build, threads set by OPENBLAS_NUM_THREADS.")
    }
}

/// Prints a plain-text table with aligned columns.
func printTable(header: [String], rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, s in i == 0 ? s.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                                               : String(repeating: " ", count: widths[i] - s.count) + s }
            .joined(separator: "  ")
    }
    print(line(header))
    print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
    rows.forEach { print(line($0)) }
}
