// What the agent accepts from its aggregator besides model bytes: the values of WELCOME and
// MERGED that become paths, names of files to upload, or round numbers. Each is checked
// before it touches the disk; a refusal names the value (escaped: the peer chose it).

import Foundation
import Protocol

enum AggregatorValueError: Error, CustomStringConvertible {
    case methodLabel(String)
    case notARoundMethod(String, methods: [String])
    case wrongRound(got: Int, admitted: Int)
    case beforeWelcome
    case requiredFile(String)
    case fileCount(method: String, count: Int)
    case fileName(method: String, got: String, expected: String)
    case tooLarge(method: String, size: UInt64, limit: UInt64)
    case offerMismatch(name: String, announced: String)
    case noDownload(MessageType)

    var description: String {
        switch self {
        case .methodLabel(let label):
            return "the aggregator named a merged model '\(loggable(label))', which is not a method label (\(PortableName.rule)); refused"
        case let .notARoundMethod(label, methods):
            return "MERGED for '\(loggable(label))', which is not one of this round's methods (\(methods.map { loggable($0) }.joined(separator: ", "))); refused"
        case let .wrongRound(got, admitted):
            return "MERGED for round \(got), but this agent was admitted to round \(admitted); refused"
        case .beforeWelcome:
            return "MERGED before WELCOME; refused"
        case .requiredFile(let name):
            return "the aggregator asked for '\(loggable(name))', which is not a file this agent uploads (\(AggregatorValues.uploadable.joined(separator: ", "))); refused"
        case let .fileCount(method, count):
            return "MERGED for '\(loggable(method))' lists \(count) files; one, \(loggable(method)).safetensors, is expected; refused"
        case let .fileName(method, got, expected):
            return "MERGED for '\(loggable(method))' names the file '\(loggable(got))'; '\(expected)' is expected; refused"
        case let .tooLarge(method, size, limit):
            return "MERGED for '\(loggable(method))' announces \(size) bytes, more than \(limit) (twice this agent's own model and 64 MiB); refused"
        case let .offerMismatch(name, announced):
            return "OFFER of '\(loggable(name))' does not match the MERGED announcement of '\(loggable(announced))' (name, size and SHA-256); refused"
        case .noDownload(let type):
            return "\(type) while no merged model is being received (no accepted MERGED); refused"
        }
    }
}

enum AggregatorValues {
    /// The files an agent ever uploads (what `LocalWork.prepare` writes).
    static let uploadable = ["config.json", "model.safetensors", "stats.safetensors"]

    /// WELCOME: method labels become directories, required names become files read for upload.
    static func check(_ welcome: Welcome) throws {
        for label in welcome.methods where !PortableName.isMethodLabel(label) { throw AggregatorValueError.methodLabel(label) }
        for name in required(welcome) where !uploadable.contains(name) { throw AggregatorValueError.requiredFile(name) }
        // A secure merge's upload is written under prepared/: only the one name its merge gives.
        if let plan = welcome.secure, !PortableName.isMethodLabel(welcome.merge) || plan.upload != SecurePlan.uploadName(merge: welcome.merge) {
            throw AggregatorValueError.requiredFile(plan.upload)
        }
    }

    static func required(_ welcome: Welcome) -> [String] { welcome.required }

    /// MERGED: one of this round's methods, this round, one file named `<label>.safetensors`
    /// of a size plausible for this agent's model (`ownModelBytes`). Returns that file.
    static func check(_ merged: Merged, welcome: Welcome?, ownModelBytes: UInt64) throws -> MergedFile {
        guard PortableName.isMethodLabel(merged.method) else { throw AggregatorValueError.methodLabel(merged.method) }
        guard let welcome else { throw AggregatorValueError.beforeWelcome }
        guard merged.round == welcome.round else { throw AggregatorValueError.wrongRound(got: merged.round, admitted: welcome.round) }
        guard welcome.methods.contains(merged.method) else { throw AggregatorValueError.notARoundMethod(merged.method, methods: welcome.methods) }
        guard merged.files.count == 1, let file = merged.files.first else {
            throw AggregatorValueError.fileCount(method: merged.method, count: merged.files.count)
        }
        let expected = merged.method + ".safetensors"
        guard file.name == expected else { throw AggregatorValueError.fileName(method: merged.method, got: file.name, expected: expected) }
        let limit = 2 * ownModelBytes + (64 << 20)
        guard file.size <= limit else { throw AggregatorValueError.tooLarge(method: merged.method, size: file.size, limit: limit) }
        return file
    }
}
