// Writing safetensors files (F32, or BF16/F64 on request), atomically, streaming one
// tensor at a time so a large model never needs a second in-memory copy.

import Foundation
import LinAlg

public enum SafeTensorsWriter {
    /// Writes `tensors` in the given order with `metadata`, atomically, as `dtype`
    /// (F32 default; BF16 rounds to nearest even; F64 widens).
    public static func write(tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String] = [:],
                             to path: String, dtype: SafeTensorsDType = .F32) throws {
        var byName: [String: Tensor<Float>] = [:]
        for (name, tensor) in tensors {
            guard byName.updateValue(tensor, forKey: name) == nil else { throw SafeTensorsError.duplicateName(path: path, tensor: name) }
        }
        try write(layout: tensors.map { ($0.name, $0.tensor.shape) }, metadata: metadata, to: path, dtype: dtype) { name in
            byName[name]!
        }
    }

    /// Streaming form: the header is written from `layout`, then `produce(name)` is called once
    /// per tensor in order and its result written immediately. `produce` must return the
    /// shape announced in `layout`.
    public static func write(layout: [(name: String, shape: [Int])], metadata: [String: String] = [:],
                             to path: String, dtype: SafeTensorsDType = .F32,
                             produce: (String) throws -> Tensor<Float>) throws {
        guard [.F32, .BF16, .F64].contains(dtype) else {
            throw SafeTensorsError.unsupportedDType(path: path, tensor: "(writer)", dtype: dtype.rawValue)
        }
        var seen = Set<String>()
        var header = "{"
        if !metadata.isEmpty {
            header += "\"__metadata__\":{" + metadata.keys.sorted().map { jsonString($0) + ":" + jsonString(metadata[$0]!) }.joined(separator: ",") + "}"
        }
        var offset = 0
        for (i, item) in layout.enumerated() {
            guard seen.insert(item.name).inserted, item.name != "__metadata__" else {
                throw SafeTensorsError.duplicateName(path: path, tensor: item.name)
            }
            let bytes = item.shape.reduce(1, *) * dtype.byteSize
            if i > 0 || !metadata.isEmpty { header += "," }
            header += jsonString(item.name) + ":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[" +
                item.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        header += "}"
        // Pad the header with spaces so the data section starts 8-byte aligned.
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var prefix = [UInt8](repeating: 0, count: 8)
        var length = UInt64(headerBytes.count)
        for i in 0..<8 { prefix[i] = UInt8(truncatingIfNeeded: length); length >>= 8 }

        try AtomicFile.write(to: path) { fd in
            try (prefix + headerBytes).withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: path) }
            for item in layout {
                let tensor = try produce(item.name)
                guard tensor.shape == item.shape else {
                    throw SafeTensorsError.badTensor(path: path, tensor: item.name,
                                                     detail: "shape \(tensor.shape) differs from the announced \(item.shape)")
                }
                switch dtype {
                case .F32:
                    try tensor.storage.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: path) }
                case .BF16:
                    let halves = tensor.storage.map { HalfPrecision.bf16FromFloat($0).littleEndian }
                    try halves.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: path) }
                case .F64:
                    let wide = tensor.storage.map { Double($0) }
                    try wide.withUnsafeBytes { try AtomicFile.writeAll(fd: fd, $0, path: path) }
                default:
                    break
                }
            }
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
