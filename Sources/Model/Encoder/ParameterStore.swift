// ParameterStore: every trainable tensor of a model in one flat Float buffer (plus a gradient
// buffer of the same layout), addressed by Hugging Face name. One buffer keeps the optimiser,
// gradient clipping and statistics loops single BLAS-sized passes.

import Foundation
import LinAlg

public final class ParameterStore {
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        /// AdamW convention (HF Trainer): no weight decay on biases and LayerNorm weights.
        public var decays: Bool { !(name.hasSuffix(".bias") || name.contains("LayerNorm")) }
    }

    public private(set) var entries: [Entry] = []
    private var index: [String: Int] = [:]
    public private(set) var count = 0
    public private(set) var values: UnsafeMutableBufferPointer<Float>
    public private(set) var gradients: UnsafeMutableBufferPointer<Float>

    /// Lays out the named shapes in order; values and gradients start at zero.
    public init(layout: [(name: String, shape: [Int])]) {
        var offset = 0
        for (name, shape) in layout {
            index[name] = entries.count
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        count = offset
        values = .allocate(capacity: max(offset, 1))
        values.initialize(repeating: 0)
        // calloc: a model that only runs inference never writes its gradients, and zero pages
        // from the kernel that are never written never become resident memory.
        let raw = calloc(max(offset, 1), MemoryLayout<Float>.stride)!
        gradients = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Float.self, capacity: max(offset, 1)), count: max(offset, 1))
    }

    deinit {
        values.deallocate()
        free(gradients.baseAddress)
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// Offset of a parameter the model itself registered (a missing name is a programming error).
    func offset(_ name: String) -> Int {
        guard let i = index[name] else { preconditionFailure("no parameter named \(name)") }
        return entries[i].offset
    }

    public func value(_ name: String) -> UnsafeMutablePointer<Float> { values.baseAddress! + offset(name) }
    public func gradient(_ name: String) -> UnsafeMutablePointer<Float> { gradients.baseAddress! + offset(name) }

    public func zeroGradients() { gradients.update(repeating: 0) }

    /// A copy of one parameter as a tensor.
    public func tensor(_ name: String) -> Tensor<Float>? {
        guard let e = entry(name) else { return nil }
        return try? Tensor(shape: e.shape, storage: Array(values[e.offset..<(e.offset + e.count)]))
    }

    /// A copy of one parameter's gradient as a tensor.
    public func gradientTensor(_ name: String) -> Tensor<Float>? {
        guard let e = entry(name) else { return nil }
        return try? Tensor(shape: e.shape, storage: Array(gradients[e.offset..<(e.offset + e.count)]))
    }

    /// Overwrites one parameter; the caller checked the shape.
    public func set(_ name: String, from tensor: Tensor<Float>) {
        let e = entries[index[name]!]
        precondition(tensor.count == e.count, "\(name): \(tensor.shape) vs \(e.shape)")
        tensor.withUnsafeBufferPointer { src in (values.baseAddress! + e.offset).update(from: src.baseAddress!, count: e.count) }
    }
}
