// Binary framing of one message: [version u16][type u16][header length u32][JSON header][payload],
// integers big-endian. The decoder checks every length against MessageLimits before it
// touches the bytes, so a hostile peer can make it neither trap nor allocate.

import Foundation

/// Caps that bound what one message may make us hold. Link layers derive ZMQ_MAXMSGSIZE from them.
public struct MessageLimits: Sendable, Equatable {
    /// Longest JSON header accepted (bytes).
    public var maxHeaderBytes: Int
    /// Longest CHUNK payload accepted (bytes). DESIGN.md §4: chunks are ≤ 4 MiB.
    public var maxPayloadBytes: Int

    public init(maxHeaderBytes: Int = 64 << 10, maxPayloadBytes: Int = 4 << 20) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxPayloadBytes = maxPayloadBytes
    }

    public static let standard = MessageLimits()

    /// Longest whole encoded message (prefix + header + payload).
    public var maxMessageBytes: Int { MessageCodec.prefixBytes + maxHeaderBytes + maxPayloadBytes }
}

/// Why bytes could not be decoded into a Message. Every case names the offending value.
public enum MessageDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncatedPrefix(length: Int)
    case unsupportedVersion(UInt16)
    case unknownType(UInt16)
    case headerTooLong(claimed: UInt32, limit: Int)
    case headerBeyondMessage(claimed: UInt32, available: Int)
    case messageTooLong(length: Int, limit: Int)
    case payloadTooLong(type: MessageType, length: Int, limit: Int)
    case unexpectedPayload(type: MessageType, length: Int)
    case malformedHeader(type: MessageType, reason: String)

    public var description: String {
        switch self {
        case .truncatedPrefix(let length):
            "message of \(length) bytes is shorter than the \(MessageCodec.prefixBytes)-byte prefix"
        case .unsupportedVersion(let version):
            "message has protocol version \(version); this build speaks version \(MessageCodec.version) — upgrade the older side"
        case .unknownType(let type):
            "message type \(type) is unknown"
        case .headerTooLong(let claimed, let limit):
            "header length field claims \(claimed) bytes, above the limit of \(limit)"
        case .headerBeyondMessage(let claimed, let available):
            "header length field claims \(claimed) bytes but only \(available) follow the prefix (truncated message)"
        case .messageTooLong(let length, let limit):
            "message of \(length) bytes exceeds the limit of \(limit)"
        case .payloadTooLong(let type, let length, let limit):
            "\(type) payload of \(length) bytes exceeds the limit of \(limit)"
        case .unexpectedPayload(let type, let length):
            "\(type) carries \(length) payload bytes; only CHUNK may carry a payload"
        case .malformedHeader(let type, let reason):
            "\(type) header is not valid JSON for its type: \(reason)"
        }
    }
}

/// Encodes and decodes messages under a set of limits. A value type; one per link is fine.
public struct MessageCodec: Sendable {
    public static let version: UInt16 = ProtocolVersion.current
    public static let prefixBytes = 8

    public let limits: MessageLimits

    public init(limits: MessageLimits = .standard) {
        self.limits = limits
    }

    // MARK: encoding

    /// The JSON header of `message` (never the payload).
    public func headerJSON(of message: Message) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding our own Codable structs of strings and numbers cannot fail, except for
        // non-finite Doubles in EVAL metrics, which we write as strings instead.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        func json<T: Encodable>(_ value: T) -> Data {
            (try? encoder.encode(value)) ?? Data("{}".utf8)
        }
        switch message {
        case .hello(let h): return json(h)
        case .welcome(let h): return json(h)
        case .refused(let h): return json(h)
        case .offer(let h): return json(h)
        case .resume(let h): return json(h)
        case .chunk(let h, _): return json(h)
        case .ack(let h): return json(h)
        case .commit(let h): return json(h)
        case .committed(let h): return json(h)
        case .merged(let h): return json(h)
        case .eval(let h): return json(h)
        case .evaluated(let h): return json(h)
        case .error(let h): return json(h)
        case .heartbeat: return json(Heartbeat())
        case .secureKey(let h): return json(h)
        case .secureKeys(let h): return json(h)
        case .secureBounds(let h): return json(h)
        case .secureScale(let h): return json(h)
        case .revealRequest(let h): return json(h)
        case .reveal(let h): return json(h)
        case .mergeFailed(let h): return json(h)
        }
    }

    /// The prefix and header of `message`; the payload (CHUNK only) follows it on the wire.
    /// Link layers write this and the payload separately so the payload is never copied.
    public func encodeHead(of message: Message) -> Data {
        let header = headerJSON(of: message)
        var out = Data(capacity: Self.prefixBytes + header.count)
        appendBigEndian(Self.version, to: &out)
        appendBigEndian(message.type.rawValue, to: &out)
        appendBigEndian(UInt32(header.count), to: &out)
        out.append(header)
        return out
    }

    /// The whole encoded message in one buffer (copies the payload; fine for small messages).
    public func encode(_ message: Message) -> Data {
        var out = encodeHead(of: message)
        if case .chunk(_, let payload) = message { out.append(payload) }
        return out
    }

    private func appendBigEndian<T: FixedWidthInteger>(_ value: T, to data: inout Data) {
        withUnsafeBytes(of: value.bigEndian) { data.append(contentsOf: $0) }
    }

    // MARK: decoding

    /// Decodes one message. A CHUNK's payload is a slice of `bytes` (no copy; its indices
    /// start where the payload started in `bytes`, so index it through `withUnsafeBytes`).
    public func decode(_ bytes: Data) throws(MessageDecodingError) -> Message {
        let count = bytes.count
        guard count >= Self.prefixBytes else { throw .truncatedPrefix(length: count) }
        guard count <= limits.maxMessageBytes else { throw .messageTooLong(length: count, limit: limits.maxMessageBytes) }
        let (version, rawType, headerLength) = bytes.withUnsafeBytes { raw -> (UInt16, UInt16, UInt32) in
            (UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt16.self)),
             UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self)),
             UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        }
        guard version == Self.version else { throw .unsupportedVersion(version) }
        guard let type = MessageType(rawValue: rawType) else { throw .unknownType(rawType) }
        guard headerLength <= UInt32(limits.maxHeaderBytes) else {
            throw .headerTooLong(claimed: headerLength, limit: limits.maxHeaderBytes)
        }
        let available = count - Self.prefixBytes
        guard Int(headerLength) <= available else {
            throw .headerBeyondMessage(claimed: headerLength, available: available)
        }
        let headerStart = bytes.startIndex + Self.prefixBytes
        let payloadStart = headerStart + Int(headerLength)
        let header = bytes[headerStart..<payloadStart]
        let payloadLength = bytes.endIndex - payloadStart
        if type.carriesPayload {
            guard payloadLength <= limits.maxPayloadBytes else {
                throw .payloadTooLong(type: type, length: payloadLength, limit: limits.maxPayloadBytes)
            }
        } else if payloadLength != 0 {
            throw .unexpectedPayload(type: type, length: payloadLength)
        }

        func parse<T: Decodable>(_: T.Type) throws(MessageDecodingError) -> T {
            do {
                return try JSONDecoder().decode(T.self, from: header)
            } catch {
                throw .malformedHeader(type: type, reason: Self.describe(error))
            }
        }
        switch type {
        case .hello: return .hello(try parse(Hello.self))
        case .welcome: return .welcome(try parse(Welcome.self))
        case .refused: return .refused(try parse(Refused.self))
        case .offer: return .offer(try parse(Offer.self))
        case .resume: return .resume(try parse(Resume.self))
        case .chunk: return .chunk(try parse(Chunk.self), payload: bytes[payloadStart...])
        case .ack: return .ack(try parse(Ack.self))
        case .commit: return .commit(try parse(Commit.self))
        case .committed: return .committed(try parse(Committed.self))
        case .merged: return .merged(try parse(Merged.self))
        case .eval: return .eval(try parse(Eval.self))
        case .evaluated: return .evaluated(try parse(Evaluated.self))
        case .error: return .error(try parse(ErrorReport.self))
        case .heartbeat:
            _ = try parse(Heartbeat.self)
            return .heartbeat
        case .secureKey: return .secureKey(try parse(SecureKey.self))
        case .secureKeys: return .secureKeys(try parse(SecureKeys.self))
        case .secureBounds: return .secureBounds(try parse(SecureBounds.self))
        case .secureScale: return .secureScale(try parse(SecureScale.self))
        case .revealRequest: return .revealRequest(try parse(RevealRequest.self))
        case .reveal: return .reveal(try parse(Reveal.self))
        case .mergeFailed: return .mergeFailed(try parse(MergeFailed.self))
        }
    }

    /// A one-line reason from a DecodingError (its default description is a page long).
    private static func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
            "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        case .dataCorrupted(let context)?:
            context.codingPath.isEmpty ? context.debugDescription
                : "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': \(context.debugDescription)"
        default: String(describing: error)
        }
    }
}
