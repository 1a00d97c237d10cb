import GRPCCore
import GRPCNIOTransportCore

/// A `StreamJobOutputResponse` already in its wire form: the output bytes were read from the
/// log straight into the buffer the transport sends, behind the message's field headers.
///
/// Why: through the generated message a chunk was copied three times between the log and the
/// socket (into `Data`, by the protobuf encoder, by gRPC's framer), and output streaming is
/// where the server spends its CPU. Now the read from the page cache and gRPC's framer are the
/// only copies. The encoding is protobuf's, field order aside: `offset` (2) comes first,
/// because it is known before the read, then `data` (1); decoders accept fields in any order.
struct OutputChunk: Sendable {
    /// The encoded message.
    var wire: GRPCNIOTransportBytes

    /// The largest chunk that keeps a whole message (gRPC's 5-byte prefix, these field headers
    /// and the bytes) within one 128 KiB HTTP/2 DATA frame, the frame size jobctl accepts: a
    /// message one byte over it went out as a second, tiny frame.
    static let maximumDataBytes = 128 * 1024 - 32

    /// A message for `count` bytes of output at `offset`, its data read by `fill` (which gets
    /// exactly `count` bytes of room).
    init(offset: UInt64, count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        var header: [UInt8] = []
        if offset != 0 {  // proto3 leaves a zero out
            header.append(2 << 3 | 0)
            Self.appendVarint(offset, to: &header)
        }
        header.append(1 << 3 | 2)
        Self.appendVarint(UInt64(count), to: &header)
        // Zero-filled, then overwritten: the transport's bytes type offers no uninitialized
        // buffer, and clearing costs less than the copy it replaces.
        wire = GRPCNIOTransportBytes(repeating: 0, count: header.count + count)
        try wire.withUnsafeMutableBytes { buffer in
            buffer.copyBytes(from: header)
            try fill(UnsafeMutableRawBufferPointer(rebasing: buffer[header.count...]))
        }
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }
}

/// Hands an `OutputChunk`'s bytes to the transport as they are.
struct OutputChunkSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: OutputChunk) throws -> Bytes {
        if let wire = message.wire as? Bytes { return wire }
        // Another transport (the in-process one of the tests) has a bytes type of its own.
        return message.wire.withUnsafeBytes { Bytes($0) }
    }
}
