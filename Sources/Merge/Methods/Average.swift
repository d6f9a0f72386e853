// `average`: Σ wᵢ θᵢ / Σ wᵢ for every tensor (weights per model, default 1).

import LinAlg

public struct Average: MergeMethod {
    public init() {}
    public let name = "average"
    public let summary = "Weighted average of every tensor: Σ wᵢθᵢ / Σ wᵢ."
    public let parameters: [ParameterSpec] = []
    public let needsBase = false
    public func requiredStatistics(_ parameters: MergeParameters) -> Set<StatisticKind> {
        CommonParameters.headsStatistics(parameters)
    }
    public func makeAccumulator(validated parameters: MergeParameters, base: NamedTensors?) throws -> any MergeAccumulator {
        AverageAccumulator(fold: ModelFold(method: name, parameters: parameters))
    }
}

final class AverageAccumulator: MergeAccumulator {
    private let fold: ModelFold
    init(fold: ModelFold) { self.fold = fold }

    func add(model: NamedTensors, statistics: NamedStatistics, weight: Double, name: String) throws {
        let (_, seconds) = try timed {
            let checked = try fold.check(model: model, statistics: statistics, weight: weight, name: name)
            fold.commit(checked, model: model, weight: weight)
            for n in fold.order where !fold.isSeparateHead(n) { fold.average(n, model[n]!, weight: weight) }
        }
        fold.addTime(seconds)
    }

    func finish() throws -> MergeResult { try fold.finish(claimed: [:], finishSeconds: 0) }
}
