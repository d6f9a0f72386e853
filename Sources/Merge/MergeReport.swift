// MergeReport: what a merge did to each tensor (rule, solve path, condition, fallbacks) and
// totals; encoded as merge-report.json next to the merged model.

import Foundation

public struct MergeReport: Sendable, Codable, Equatable {
    public struct TensorEntry: Sendable, Codable, Equatable {
        public var name: String
        /// "regmean" | "fisher" | "average" | "task_arithmetic" | "ties" | "keep" | "per_label" | …
        public var rule: String
        /// For solves: "cholesky" | "jitter" | "pinv" (LinAlg's SymmetricSolution.Path.name).
        public var solvePath: String?
        public var solveDetail: String?
        public var conditionEstimate: Double?
        /// Entries that fell back to a plain average (Fisher below its floor, labels no model saw).
        public var fallbackCount: Int?
        public var note: String?
        /// Iterative solves (MaTS): CG iterations run, ‖r‖/‖b‖ at the start and the end, converged.
        public var iterations: Int?
        public var initialResidual: Double?
        public var finalResidual: Double?
        public var converged: Bool?

        public init(name: String, rule: String, solvePath: String? = nil, solveDetail: String? = nil,
                    conditionEstimate: Double? = nil, fallbackCount: Int? = nil, note: String? = nil) {
            self.name = name; self.rule = rule; self.solvePath = solvePath; self.solveDetail = solveDetail
            self.conditionEstimate = conditionEstimate; self.fallbackCount = fallbackCount; self.note = note
        }
    }

    public var method: String
    public var parameters: [String: String]
    public var models: [String]
    public var weights: [Double]
    public var tensors: [TensorEntry]
    /// Tensors per rule, e.g. {"regmean": 36, "average": 65}.
    public var totals: [String: Int]
    /// With `heads: keep`: model name → the head prefix written for it (e.g. "classifier_a.").
    public var headsMapping: [String: String]
    /// Wall time spent folding models in and finishing, in seconds.
    public var addSeconds: Double
    public var finishSeconds: Double

    public func entry(_ name: String) -> TensorEntry? { tensors.first { $0.name == name } }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
