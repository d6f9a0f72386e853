// Reading safetensors files: memory-mapped, header validated before any tensor is touched.
//
// Format: [u64 little-endian N][N bytes of JSON header][data]. The header maps each tensor
// name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to the data start),
// plus an optional "__metadata__" string→string map.

import Foundation
import LinAlg

public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case F32, F16, BF16, F64, I64, I32

    public var byteSize: Int {
        switch self {
        case .F16, .BF16: return 2
        case .F32, .I32: return 4
        case .F64, .I64: return 8
        }
    }
}

public struct SafeTensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let dataRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file opened read-only and memory-mapped. Tensors are converted on demand.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    /// Tensor names in file (data offset) order.
    public let names: [String]
    public let metadata: [String: String]
    private let entries: [String: SafeTensorsEntry]
    private let data: Data          // the whole file, memory-mapped
    private let dataStart: Int

    /// Largest header we accept (the format's own reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        self.path = path
        let mapped: Data
        do {
            mapped = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw SafeTensorsError.cannotOpen(path: path, reason: (error as NSError).localizedDescription)
        }
        guard mapped.count >= 8 else {
            throw SafeTensorsError.truncated(path: path, detail: "\(mapped.count) bytes, the 8-byte header length is missing")
        }
        var headerLength: UInt64 = 0
        for i in (0..<8).reversed() { headerLength = headerLength << 8 | UInt64(mapped[mapped.startIndex + i]) }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw SafeTensorsError.badHeader(path: path, detail: "header length \(headerLength) exceeds \(Self.maxHeaderBytes) bytes")
        }
        guard 8 + Int(headerLength) <= mapped.count else {
            throw SafeTensorsError.truncated(path: path, detail: "header claims \(headerLength) bytes, file has \(mapped.count - 8) after the length")
        }
        let headerData = mapped.subdata(in: (mapped.startIndex + 8)..<(mapped.startIndex + 8 + Int(headerLength)))
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw SafeTensorsError.badHeader(path: path, detail: "header is not JSON")
        }
        guard let header = parsed as? [String: Any] else {
            throw SafeTensorsError.badHeader(path: path, detail: "header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength)
        let dataLength = mapped.count - dataStart

        var metadata: [String: String] = [:]
        var entries: [String: SafeTensorsEntry] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw SafeTensorsError.badHeader(path: path, detail: "__metadata__ is not an object")
                }
                for (k, v) in map {
                    guard let s = v as? String else {
                        throw SafeTensorsError.badHeader(path: path, detail: "__metadata__ value for '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw SafeTensorsError.badTensor(path: path, tensor: name, detail: "entry is not an object")
            }
            guard let dtypeName = info["dtype"] as? String else {
                throw SafeTensorsError.badTensor(path: path, tensor: name, detail: "missing dtype")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw SafeTensorsError.unsupportedDType(path: path, tensor: name, dtype: dtypeName)
            }
            guard let shapeValues = info["shape"] as? [Any],
                  let shape = Self.nonNegativeInts(shapeValues) else {
                throw SafeTensorsError.badTensor(path: path, tensor: name, detail: "shape is not a list of non-negative integers")
            }
            guard let offsetValues = info["data_offsets"] as? [Any], offsetValues.count == 2,
                  let offsets = Self.nonNegativeInts(offsetValues), offsets[0] <= offsets[1] else {
                throw SafeTensorsError.badTensor(path: path, tensor: name, detail: "data_offsets is not [begin, end] with begin ≤ end")
            }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d); return (p, acc.1 || o)
            }
            let (bytes, overflow2) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, !overflow2, bytes == offsets[1] - offsets[0] else {
                throw SafeTensorsError.badTensor(path: path, tensor: name,
                    detail: "shape \(shape) × \(dtype.byteSize) bytes does not match data_offsets \(offsets) (\(offsets[1] - offsets[0]) bytes)")
            }
            guard offsets[1] <= dataLength else {
                throw SafeTensorsError.truncated(path: path, detail: "tensor '\(name)' ends at data byte \(offsets[1]) but the data section has \(dataLength) bytes")
            }
            entries[name] = SafeTensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: offsets[0]..<offsets[1])
        }
        let ordered = entries.values.sorted { ($0.dataRange.lowerBound, $0.name) < ($1.dataRange.lowerBound, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.dataRange.overlaps(b.dataRange) {
            throw SafeTensorsError.overlapping(path: path, first: a.name, second: b.name)
        }
        self.names = ordered.map(\.name)
        self.entries = entries
        self.metadata = metadata
        self.data = mapped
        self.dataStart = dataStart
    }

    private static func nonNegativeInts(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(),
                  n.doubleValue >= 0, n.doubleValue <= Double(Int.max / 16) else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    public func entry(_ name: String) -> SafeTensorsEntry? { entries[name] }

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// Runs `body` over the raw little-endian bytes of a tensor, without copying.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let e = entries[name] else { throw SafeTensorsError.missingTensor(path: path, tensor: name) }
        return try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[(dataStart + e.dataRange.lowerBound)..<(dataStart + e.dataRange.upperBound)]))
        }
    }

    /// A floating-point tensor as Float32 (F32 copied; F16/BF16/F64 converted).
    public func floatTensor(_ name: String) throws -> Tensor<Float> {
        guard let e = entries[name] else { throw SafeTensorsError.missingTensor(path: path, tensor: name) }
        let n = e.elementCount
        var values = [Float](repeating: 0, count: n)
        try withRawBytes(name) { raw in
            values.withUnsafeMutableBufferPointer { out in
                switch e.dtype {
                case .F32:
                    for i in 0..<n { out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian) }
                case .F16:
                    for i in 0..<n { out[i] = HalfPrecision.floatFromFP16(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
                case .BF16:
                    for i in 0..<n { out[i] = HalfPrecision.floatFromBF16(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian) }
                case .F64:
                    for i in 0..<n { out[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)) }
                case .I64, .I32:
                    break
                }
            }
        }
        if e.dtype == .I64 || e.dtype == .I32 {
            throw SafeTensorsError.badTensor(path: path, tensor: name, detail: "is \(e.dtype.rawValue), not a floating-point tensor")
        }
        return try Tensor(shape: e.shape, storage: values)
    }

    /// A floating-point tensor as Float64 (no rounding for F64 data).
    public func doubleTensor(_ name: String) throws -> Tensor<Double> {
        guard let e = entries[name] else { throw SafeTensorsError.missingTensor(path: path, tensor: name) }
        if e.dtype == .F64 {
            let n = e.elementCount
            var values = [Double](repeating: 0, count: n)
            try withRawBytes(name) { raw in
                for i in 0..<n { values[i] = Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian) }
            }
            return try Tensor(shape: e.shape, storage: values)
        }
        return try floatTensor(name).converted(to: Double.self)
    }

    /// An integer tensor (I64 or I32) as Int64 values, flattened.
    public func int64Values(_ name: String) throws -> [Int64] {
        guard let e = entries[name] else { throw SafeTensorsError.missingTensor(path: path, tensor: name) }
        let n = e.elementCount
        return try withRawBytes(name) { raw in
            switch e.dtype {
            case .I64: return (0..<n).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
            case .I32: return (0..<n).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            default: throw SafeTensorsError.badTensor(path: path, tensor: name, detail: "is \(e.dtype.rawValue), not an integer tensor")
            }
        }
    }
}
