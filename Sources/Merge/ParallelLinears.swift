// ParallelLinears: runs independent per-linear work (Gram folds, solves) across cores, with
// OpenBLAS held to one thread meanwhile so the cores are not oversubscribed.

import Foundation
import LinAlg

enum ParallelLinears {
    /// Runs `body(i)` for i in 0..<count, concurrently when `parallel`; rethrows the first error
    /// (by index) after all have run. With `cost`, the tasks start largest first: a MiniLM's
    /// six 1536-wide linears are most of the work, and started last in model order, one core
    /// finished them alone while the other sat idle.
    static func run(count: Int, parallel: Bool, cost: ((Int) -> Double)? = nil, _ body: @escaping (Int) throws -> Void) throws {
        guard count > 0 else { return }
        guard parallel, count > 1, ProcessInfo.processInfo.activeProcessorCount > 1 else {
            for i in 0..<count { try body(i) }
            return
        }
        // Each task touches only its own linear's sums; the shared inputs are read-only.
        let order = cost.map { c in (0..<count).sorted { c($0) > c($1) } }
        try BLAS.concurrentPerform(iterations: count, order: order, throwing: body)
    }
}
