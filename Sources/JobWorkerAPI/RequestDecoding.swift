import GRPCCore
import SwiftProtobuf

/// Decodes a request message, with a size limit of its own method, and says what was wrong
/// with one that does not decode.
///
/// gRPC's stock deserializer answers every decoding failure "Can't deserialize to message of
/// type X", with the cause dropped on the way to the client. A client that sent invalid UTF-8 in
/// a string field, or a truncated message, gets INVALID_ARGUMENT naming the field (when one
/// field is the culprit); a message over the method's limit gets RESOURCE_EXHAUSTED with its
/// size and the limit.
struct RequestDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
    /// The largest message accepted, in bytes.
    let limit: Int

    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        let bytes = serializedMessageBytes.withUnsafeBytes { [UInt8]($0) }
        guard bytes.count <= limit else {
            throw RPCError(
                code: .resourceExhausted,
                message: "the \(Message.protoMessageName) message is \(bytes.count) bytes (at most \(limit))")
        }
        do {
            return try Message(serializedBytes: bytes)
        } catch {
            throw RPCError(code: .invalidArgument, message: Self.describeFailure(of: bytes, error))
        }
    }

    /// "field args of jobworker.v1.StartJobRequest holds invalid UTF-8", or what is known.
    static func describeFailure(of bytes: [UInt8], _ error: any Error) -> String {
        let what =
            switch error as? BinaryDecodingError {
            case .invalidUTF8?: "holds invalid UTF-8"
            case .truncated?: "is truncated"
            case .malformedProtobuf?: "is not protobuf"
            default: "cannot be decoded"
            }
        if let field = WireFields(bytes).first(where: { (try? Message(serializedBytes: $0.encoded)) == nil }),
            let name = fieldName(number: field.number)
        {
            return "field \(name) of \(Message.protoMessageName) \(what)"
        }
        return "the \(Message.protoMessageName) message \(what)"
    }

    /// The name of field `number`, from the text format of a message holding only a stand-in
    /// value for it (SwiftProtobuf keeps its name tables internal).
    private static func fieldName(number: UInt64) -> String? {
        for payload in [[UInt8(ascii: "x")], []] {
            var encoded = WireFields.varint(number << 3 | 2)
            encoded += WireFields.varint(UInt64(payload.count)) + payload
            guard let message = try? Message(serializedBytes: encoded) else { continue }
            let text = message.textFormatString()
            if let end = text.firstIndex(where: { $0 == ":" || $0 == " " }), !text.hasPrefix("[") {
                return String(text[..<end])
            }
        }
        return nil
    }
}

/// The top-level fields of an encoded protobuf message, each with its own encoding (tag and
/// value), as far as they can be split.
struct WireFields: Sequence, IteratorProtocol {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func next() -> (number: UInt64, encoded: [UInt8])? {
        let start = position
        guard let tag = readVarint(), tag >> 3 != 0 else { return nil }
        switch tag & 7 {
        case 0: guard readVarint() != nil else { return nil }
        case 1: guard skip(8) else { return nil }
        case 2: guard let length = readVarint(), length <= UInt64(bytes.count), skip(Int(length)) else { return nil }
        case 5: guard skip(4) else { return nil }
        default: return nil
        }
        return (tag >> 3, Array(bytes[start..<position]))
    }

    private mutating func readVarint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard position < bytes.count else { return nil }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7f) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }

    private mutating func skip(_ count: Int) -> Bool {
        guard count <= bytes.count - position else { return false }
        position += count
        return true
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var encoded: [UInt8] = []
        while value >= 0x80 {
            encoded.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        return encoded + [UInt8(value)]
    }
}
