// NamedTensors: an ordered collection of fp32 tensors keyed by their Hugging Face names,
// the unit a merge method consumes (one model) and produces (the merged model).

import LinAlg

public struct NamedTensors: Sendable, Equatable {
    /// Names in insertion order; the merged model is written in the first model's order.
    public private(set) var names: [String] = []
    private var byName: [String: Tensor<Float>] = [:]

    public init() {}

    /// Builds from (name, tensor) pairs; a repeated name is an error naming it.
    public init(_ pairs: [(name: String, tensor: Tensor<Float>)]) throws {
        for (name, tensor) in pairs {
            guard byName[name] == nil else { throw MergeError.duplicateTensor(tensor: name) }
            set(name, tensor)
        }
    }

    public var count: Int { names.count }
    public func contains(_ name: String) -> Bool { byName[name] != nil }

    public subscript(name: String) -> Tensor<Float>? { byName[name] }

    /// Inserts or replaces `name`; a new name goes to the end of the order.
    public mutating func set(_ name: String, _ tensor: Tensor<Float>) {
        if byName.updateValue(tensor, forKey: name) == nil { names.append(name) }
    }

    /// Removes `name` (if present), keeping the order of the others.
    public mutating func remove(_ name: String) {
        if byName.removeValue(forKey: name) != nil { names.removeAll { $0 == name } }
    }

    /// (name, tensor) pairs in order, the shape `SafeTensorsWriter.write` takes.
    public var pairs: [(name: String, tensor: Tensor<Float>)] { names.map { ($0, byName[$0]!) } }
}
