// MaskedUpload: the file a member of a secure merge uploads (`masked-<merge>.bin`): a JSON
// header saying which agent, merge and methods, each method's summand layout and the agent's
// config.json (labels; no weights), then every summand of every method, in header order, as
// masked fixed-point words (little-endian UInt64). The words are uniform noise on their own;
// only their sum over the merge's members means anything. Under heads: keep the agent's own
// classifier head follows in the clear (fp32, little-endian, the header's `clear` order): a
// kept head is this agent's alone, so there is no sum to hide it in.

import AtomicIO
import Foundation
import LinAlg
import Merge

public struct MaskedUpload: Sendable {
    public struct Header: Codable, Sendable, Equatable {
        public struct Method: Codable, Sendable, Equatable {
            public var label: String
            public var layout: SumLayout
            /// The earlier method whose summands are these exactly (RegMean at another α: the
            /// α is applied to the sums); its words are not sent again.
            public var sameAs: String?
        }
        public var agent: String
        public var merge: String
        public var round: Int
        /// The agent's config.json (it carries the labels the published config needs).
        public var config: String
        public var methods: [Method]
        /// Tensors sent in the clear after the words: the heads kept per agent (heads: keep).
        /// Absent when there are none.
        public var clear: [Slot]?

        public struct Slot: Codable, Sendable, Equatable {
            public var name: String
            public var shape: [Int]
        }
    }

    public var header: Header
    /// Aligned with the summands of the methods that are not `sameAs` another, in order.
    public var words: [[UInt64]]
    /// The tensors `header.clear` names (heads: keep), in that order.
    public var clearTensors: NamedTensors

    public static let magic = Array("FMMASK01".utf8)

    public init(agent: String, merge: String, round: Int, config: String, methods: [(label: String, layout: SumLayout, sameAs: String?)], words: [[UInt64]],
                clearTensors: NamedTensors = NamedTensors()) {
        header = Header(agent: agent, merge: merge, round: round, config: config,
                        methods: methods.map { Header.Method(label: $0.label, layout: $0.layout, sameAs: $0.sameAs) },
                        clear: clearTensors.count == 0 ? nil : clearTensors.pairs.map { Header.Slot(name: $0.name, shape: $0.tensor.shape) })
        self.words = words
        self.clearTensors = clearTensors
    }

    public func write(to path: String) throws {
        let json = try JSONEncoder().encode(header)
        var data = Data(Self.magic)
        var length = UInt64(json.count).littleEndian
        data.append(Data(bytes: &length, count: 8))
        data.append(json)
        for w in words { w.withUnsafeBufferPointer { data.append(Data(buffer: $0)) } }   // little-endian hosts only (x86-64, arm64)
        for (_, t) in clearTensors.pairs { t.storage.withUnsafeBufferPointer { data.append(Data(buffer: $0)) } }
        try AtomicFile.write(data, to: path)
    }

    /// Reads `path`, checking that the words match the layouts' sizes exactly.
    public static func read(path: String) throws -> MaskedUpload {
        guard let data = FileManager.default.contents(atPath: path) else { throw MaskedUploadError.unreadable(path: path) }
        guard data.count >= 16, Array(data.prefix(8)) == magic else { throw MaskedUploadError.malformed(path: path, reason: "no FMMASK01 magic") }
        let length = data.subdata(in: 8..<16).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(data.count - 16) else { throw MaskedUploadError.malformed(path: path, reason: "header length \(length) beyond the file") }
        let header: Header
        do { header = try JSONDecoder().decode(Header.self, from: data.subdata(in: 16..<(16 + Int(length)))) } catch {
            throw MaskedUploadError.malformed(path: path, reason: "header: \(error)")
        }
        let counts = header.methods.filter { $0.sameAs == nil }.flatMap { $0.layout.summands.map(\.count) }
        let clear = header.clear ?? []
        var clearCounts: [Int] = []
        for slot in clear {
            // Its entries must fit in the file: no overflowing product of a peer's shape.
            var n = 1
            for d in slot.shape {
                let (product, overflow) = n.multipliedReportingOverflow(by: d)
                guard d >= 0, !overflow, product <= data.count / 4 else {
                    throw MaskedUploadError.malformed(path: path, reason: "clear tensor '\(slot.name.prefix(200))' has shape \(slot.shape.prefix(8))")
                }
                n = product
            }
            clearCounts.append(n)
        }
        let expected = 16 + Int(length) + counts.reduce(0, +) * 8 + clearCounts.reduce(0, +) * 4
        guard data.count == expected else { throw MaskedUploadError.malformed(path: path, reason: "\(data.count) bytes, the layouts need \(expected)") }
        var words: [[UInt64]] = []
        var offset = 16 + Int(length)
        data.withUnsafeBytes { raw in
            for n in counts {
                var w = [UInt64](repeating: 0, count: n)
                w.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n * 8)])) }
                words.append(w.map { UInt64(littleEndian: $0) })
                offset += n * 8
            }
        }
        var tensors = NamedTensors()
        for (slot, n) in zip(clear, clearCounts) {
            guard !tensors.contains(slot.name) else { throw MaskedUploadError.malformed(path: path, reason: "clear tensor '\(slot.name.prefix(200))' twice") }
            var values = [Float](repeating: 0, count: n)
            data.withUnsafeBytes { raw in
                values.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n * 4)])) }
            }
            offset += n * 4
            tensors.set(slot.name, try Tensor(shape: slot.shape, storage: values))
        }
        return MaskedUpload(header: header, words: words, clearTensors: tensors)
    }

    init(header: Header, words: [[UInt64]], clearTensors: NamedTensors) {
        self.header = header
        self.words = words
        self.clearTensors = clearTensors
    }
}

public enum MaskedUploadError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String)
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path): return "\(path) cannot be read"
        case let .malformed(path, reason): return "\(path) is not a masked upload: \(reason)"
        }
    }
}
