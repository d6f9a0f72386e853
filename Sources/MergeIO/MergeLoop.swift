// The one merge loop: load each model directory and its statistics, fold it into a method's
// streaming accumulator (memory flat in the number of models), finish. `fedmerge merge`, the
// aggregator and the experiment runner all merge through here.

import Foundation
import Merge
import SafeTensors

/// One model to fold in: its directory, its statistics file and its weight.
public struct MergeInput: Sendable {
    public var name: String
    public var modelDirectory: String
    public var statisticsPath: String
    public var weight: Double
    public init(name: String, modelDirectory: String, statisticsPath: String? = nil, weight: Double = 1) {
        self.name = name
        self.modelDirectory = modelDirectory
        self.statisticsPath = statisticsPath ?? modelDirectory + "/stats.safetensors"
        self.weight = weight
    }
}

public enum MergeLoopError: Error, CustomStringConvertible {
    /// An error while reading or folding in one model (or the base): which one and which files.
    case inModel(name: String, files: String, underlying: String)

    public var description: String {
        switch self {
        case let .inModel(name, files, underlying): return "model \(name) (\(files)): \(underlying)"
        }
    }
}

public enum MergeLoop {
    /// Folds `inputs` in order with `choice` (with `baseModel` loaded when given: some methods
    /// need it, and MaTS may through its init method) and
    /// finishes; `skipped` names the integer buffers the first model carried (not weights).
    public static func run(_ choice: MethodChoice, inputs: [MergeInput], baseModel: String?) throws -> (result: MergeResult, skipped: [String]) {
        var base: NamedTensors?
        if let baseModel {
            base = try inModel("base", baseModel) { try ModelFiles.loadModel(directory: baseModel).tensors }
        }
        let accumulator = try choice.makeAccumulator(base: base)
        base = nil
        let kinds = choice.requiredStatistics
        var skipped: [String]?
        for input in inputs {
            try inModel(input.name, input.modelDirectory + (kinds.isEmpty ? "" : ", " + input.statisticsPath)) {
                let (tensors, skip) = try ModelFiles.loadModel(directory: input.modelDirectory)
                if skipped == nil { skipped = skip }
                let statistics = try ModelFiles.loadStatistics(path: input.statisticsPath, model: input.name, kinds: kinds)
                try accumulator.add(model: tensors, statistics: statistics, weight: input.weight, name: input.name)
            }
        }
        return (try accumulator.finish(), skipped ?? [])
    }

    private static func inModel<R>(_ name: String, _ files: String, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let e as MergeError {
            throw MergeLoopError.inModel(name: name, files: files, underlying: e.description)
        } catch let e as SafeTensorsError {
            throw MergeLoopError.inModel(name: name, files: files, underlying: e.description)
        } catch let e as ModelFilesError {
            throw MergeLoopError.inModel(name: name, files: files, underlying: e.description)
        }
    }
}
