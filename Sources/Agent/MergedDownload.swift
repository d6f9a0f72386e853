// Turns a received merged weights file into a loadable model directory: the weights (with
// this agent's own head selected when the round kept one head per agent) plus the agent's
// own config.json and tokenizer files. The aggregator is trusted with the weights' values
// only: their tensor names and shapes must be this agent's own model's, and the directory is
// built under a temporary name inside `merged/` and renamed into place, so nothing outside
// `<workdir>/round-<id>/merged/<label>` is ever written or removed. `fedmerge privacy-sweep`
// builds its per-member models of a `heads: keep` merge through here too, as its agents would.

import Foundation
import LinAlg
import Protocol
import SafeTensors

public enum MergedDownload {
    static let sideFiles = ["config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"]

    /// Builds `mergedRoot/label` from `weights`. `label` must be a method label (checked
    /// again here: it becomes a directory name).
    public static func assemble(weights: String, localModel: String, agentName: String, headsPrefix: String = HeadsNaming.defaultPrefix,
                         mergedRoot: String, label: String) throws {
        guard PortableName.isMethodLabel(label) else { throw MergedWeightsError.label(label) }
        let file = try SafeTensorsFile(path: weights)
        let own = try SafeTensorsFile(path: localModel + "/model.safetensors")
        let selection = try select(file, like: own, agentName: agentName, headsPrefix: headsPrefix)

        try FileManager.default.createDirectory(atPath: mergedRoot, withIntermediateDirectories: true)
        let building = mergedRoot + "/.building-" + label
        let replaced = mergedRoot + "/.replaced-" + label
        let target = mergedRoot + "/" + label
        for leftover in [building, replaced] { try? FileManager.default.removeItem(atPath: leftover) }
        try FileManager.default.createDirectory(atPath: building, withIntermediateDirectories: false)
        if let selection {
            var tensors: [(name: String, tensor: Tensor<Float>)] = []
            for (saved, name) in selection { tensors.append((name, try file.floatTensor(saved))) }
            try SafeTensorsWriter.write(tensors: tensors, metadata: file.metadata, to: building + "/model.safetensors")
        } else {
            try FileManager.default.copyItem(atPath: weights, toPath: building + "/model.safetensors")
        }
        for name in sideFiles where FileManager.default.fileExists(atPath: localModel + "/" + name) {
            try FileManager.default.copyItem(atPath: localModel + "/" + name, toPath: building + "/" + name)
        }
        // An earlier delivery of this label (after a restart) is moved aside, then removed.
        if rename(target, replaced) != 0 && errno != ENOENT {
            throw MergedWeightsError.io(path: target, operation: "move aside", errno: errno)
        }
        guard rename(building, target) == 0 else { throw MergedWeightsError.io(path: target, operation: "rename into", errno: errno) }
        try? FileManager.default.removeItem(atPath: replaced)
    }

    /// Checks `file`'s tensors against this agent's model `own`: the same names, shapes and
    /// floating-point kind. With one head per agent (MERGED's `headsPrefix` "classifier." and
    /// `classifier_<agent>.*` present; names spelt by HeadsNaming) the agent's head stands in
    /// for `classifier.*` and the other agents' heads are dropped. Returns (name in file, name
    /// to save) when tensors must be renamed, nil when the file is used as it is.
    static func select(_ file: SafeTensorsFile, like own: SafeTensorsFile, agentName: String,
                       headsPrefix: String = HeadsNaming.defaultPrefix) throws -> [(String, String)]? {
        let ownHead = HeadsNaming.keptPrefix(agent: agentName, headsPrefix: headsPrefix)
        let keptHeads = file.names.contains { $0.hasPrefix(ownHead) }
        var selection: [(String, String)] = []
        for name in file.names.sorted() {
            if keptHeads {
                if name.hasPrefix(ownHead) { selection.append((name, headsPrefix + name.dropFirst(ownHead.count))); continue }
                if HeadsNaming.isAnyHead(name, headsPrefix: headsPrefix) { continue }
            }
            selection.append((name, name))
        }
        var seen = Set<String>()
        for (saved, name) in selection {
            guard let mine = own.entry(name) else { throw MergedWeightsError.extraTensor(saved) }
            let theirs = file.entry(saved)!
            guard theirs.shape == mine.shape else { throw MergedWeightsError.shape(tensor: saved, got: theirs.shape, expected: mine.shape) }
            guard isFloat(theirs.dtype) == isFloat(mine.dtype) else {
                throw MergedWeightsError.dtype(tensor: saved, got: theirs.dtype.rawValue, expected: mine.dtype.rawValue)
            }
            seen.insert(name)
        }
        if let missing = own.names.sorted().first(where: { !seen.contains($0) }) { throw MergedWeightsError.missingTensor(missing) }
        return keptHeads ? selection : nil
    }

    private static func isFloat(_ dtype: SafeTensorsDType) -> Bool { dtype != .I64 && dtype != .I32 }
}

/// Why a merged weights file cannot become this agent's model; tensor names come from the
/// aggregator and are escaped.
enum MergedWeightsError: Error, CustomStringConvertible {
    case label(String)
    case extraTensor(String)
    case missingTensor(String)
    case shape(tensor: String, got: [Int], expected: [Int])
    case dtype(tensor: String, got: String, expected: String)
    case io(path: String, operation: String, errno: Int32)

    var description: String {
        switch self {
        case .label(let label):
            return "'\(loggable(label))' is not a method label (\(PortableName.rule))"
        case .extraTensor(let name):
            return "the merged model has a tensor '\(loggable(name))' that this agent's model does not have"
        case .missingTensor(let name):
            return "the merged model lacks the tensor '\(name)' of this agent's model"
        case let .shape(name, got, expected):
            return "the merged model's tensor '\(loggable(name))' has shape \(got), this agent's model has \(expected)"
        case let .dtype(name, got, expected):
            return "the merged model's tensor '\(loggable(name))' is \(got), this agent's model has \(expected)"
        case let .io(path, operation, code):
            return "cannot \(operation) \(path): \(String(cString: strerror(code)))"
        }
    }
}
