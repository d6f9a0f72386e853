// `ties`: TIES-merging (Yadav et al., "Resolving Interference When Merging Models"): trim each
// task vector to its top-k% magnitudes, elect each entry's sign by summed mass, average only the
// agreeing entries (disjoint mean), scale by λ and add to the base. Streams via positive and
// negative partial sums, so memory does not grow with the number of models.

import LinAlg

public struct Ties: MergeMethod {
    public init() {}
    public let name = "ties"
    public let summary = "Trim task vectors to top-k% magnitude, elect signs by mass, disjoint mean, scale by λ."
    public let parameters: [ParameterSpec] = [
        ParameterSpec("density", .number(0...1), default: .number(0.2),
                      doc: "Fraction k of each task vector's entries kept, by magnitude (TIES uses 20%)."),
        CommonParameters.lambda(doc: "Scale λ of the merged task vector added to the base."),
    ]
    public let needsBase = true
    public func requiredStatistics(_ parameters: MergeParameters) -> Set<StatisticKind> {
        CommonParameters.headsStatistics(parameters)
    }
    public func makeAccumulator(validated parameters: MergeParameters, base: NamedTensors?) throws -> any MergeAccumulator {
        guard let base else { throw MergeError.baseModelRequired(method: name) }
        return TaskVectorAccumulator(fold: ModelFold(method: name, parameters: parameters), base: base,
                                     rule: .ties(density: parameters.number("density") ?? 0.2, lambda: parameters.number("lambda") ?? 1))
    }
}
