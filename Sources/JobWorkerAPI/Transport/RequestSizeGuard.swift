import NIOCore

/// Answers a request whose message is over the receive limit with RESOURCE_EXHAUSTED, giving
/// its size and the limit, instead of the bare stream reset (CANCELLED, no message) the gRPC
/// transport sends.
///
/// Sits between the TLS handler and the HTTP/2 handler of a server connection and reads, never
/// changes, the client's bytes: HTTP/2 frame headers, and in DATA frames the 5-byte prefix of
/// each gRPC message, which declares its length. When a declared length is over the limit, it
/// writes a trailers-only response for that stream (one HEADERS frame, END_STREAM) before it
/// passes the bytes on; the transport, which has the same limit, then refuses the message and
/// resets the stream, and the client already has the status. The header block uses only the
/// static table and literals "without indexing", so it changes no HPACK state of either side.
final class RequestSizeGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Refusals one connection may get; a client that keeps sending oversized messages is
    /// closed instead, as is one that does not read what it is sent.
    static let maximumRefusals = 64

    private let limit: Int
    private let counters: ConnectionCounters
    private var parser: RequestFrameParser
    private var refusals = 0

    init(limit: Int, counters: ConnectionCounters) {
        self.limit = limit
        self.counters = counters
        parser = RequestFrameParser(limit: UInt64(limit))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let refused = buffer.withUnsafeReadableBytes { parser.consume($0) }
        refusals += refused.count
        if !refused.isEmpty && (refusals > Self.maximumRefusals || !context.channel.isWritable) {
            context.close(promise: nil)
            return
        }
        for refusal in refused {
            counters.oversizedRequests.add(1, ordering: .relaxed)
            let message =
                "the request message is \(refusal.declaredLength) bytes, over the server's limit of \(limit) bytes"
            var frame = context.channel.allocator.buffer(capacity: 160)
            TrailersOnlyResponse.write(
                streamID: refusal.streamID, status: 8, message: message, into: &frame)
            context.write(NIOAny(frame), promise: nil)
        }
        if !refused.isEmpty { context.flush() }
        context.fireChannelRead(data)
    }
}

/// Follows a client's HTTP/2 byte stream (after TLS) far enough to find each gRPC message's
/// declared length; reports the streams whose message is over the limit.
struct RequestFrameParser {
    struct Refusal: Equatable {
        var streamID: UInt32
        var declaredLength: UInt64
    }

    /// One stream's position in its gRPC messages.
    private struct MessageCursor {
        var prefix: [UInt8] = []
        var bodyRemaining: UInt64 = 0
        var refused = false
    }

    private enum FramePart {
        /// The client's connection preface, before any frame.
        case preface(remaining: Int)
        /// A frame header, as far as it has arrived.
        case header([UInt8])
        /// A DATA frame's pad length byte (PADDED flag).
        case padLength(stream: UInt32, flags: UInt8, remaining: Int)
        /// A DATA frame's data, then its padding.
        case data(stream: UInt32, flags: UInt8, remaining: Int, padding: Int)
        /// Any other frame's payload, skipped.
        case skipped(stream: UInt32, type: UInt8, flags: UInt8, remaining: Int)
    }

    private static let frameHeaderSize = 9
    private static let dataFrame: UInt8 = 0
    private static let headersFrame: UInt8 = 1
    private static let resetFrame: UInt8 = 3
    private static let endStream: UInt8 = 0x1
    private static let padded: UInt8 = 0x8
    /// More per-stream state than this many streams would be a client that never ends its
    /// streams (the server allows 100 at once); the oldest are forgotten (their messages are then
    /// not answered here, but still refused by the transport).
    private static let maximumTrackedStreams = 1024

    private let limit: UInt64
    private var part = FramePart.preface(remaining: 24)
    /// The streams the client has opened (HEADERS on an odd id) and not ended, by their
    /// messages' position: only those can be refused, each once.
    private var streams: [UInt32: MessageCursor] = [:]

    init(limit: UInt64) {
        self.limit = limit
    }

    /// Consumes the next bytes of the stream; returns the streams refused by these bytes.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) -> [Refusal] {
        var refused: [Refusal] = []
        var index = 0
        while index < bytes.count {
            switch part {
            case .preface(let remaining):
                let taken = min(remaining, bytes.count - index)
                index += taken
                part = remaining == taken ? .header([]) : .preface(remaining: remaining - taken)
            case .header(var header):
                let taken = min(Self.frameHeaderSize - header.count, bytes.count - index)
                header.append(contentsOf: bytes[index..<index + taken])
                index += taken
                if header.count == Self.frameHeaderSize {
                    startFrame(header)
                } else {
                    part = .header(header)
                }
            case .padLength(let stream, let flags, let remaining):
                let padding = Int(bytes[index])
                index += 1
                part = .data(
                    stream: stream, flags: flags, remaining: max(0, remaining - 1 - padding),
                    padding: min(padding, remaining - 1))
                finishFrameIfDone()
            case .data(let stream, let flags, let remaining, let padding):
                if remaining > 0 {
                    let taken = min(remaining, bytes.count - index)
                    if let refusal = feed(stream, UnsafeRawBufferPointer(rebasing: bytes[index..<index + taken])) {
                        refused.append(refusal)
                    }
                    index += taken
                    part = .data(stream: stream, flags: flags, remaining: remaining - taken, padding: padding)
                } else {
                    let taken = min(padding, bytes.count - index)
                    index += taken
                    part = .data(stream: stream, flags: flags, remaining: 0, padding: padding - taken)
                }
                finishFrameIfDone()
            case .skipped(let stream, let type, let flags, let remaining):
                let taken = min(remaining, bytes.count - index)
                index += taken
                part = .skipped(stream: stream, type: type, flags: flags, remaining: remaining - taken)
                finishFrameIfDone()
            }
        }
        return refused
    }

    private mutating func startFrame(_ header: [UInt8]) {
        let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
        let type = header[3]
        let flags = header[4]
        let stream =
            (UInt32(header[5]) << 24 | UInt32(header[6]) << 16 | UInt32(header[7]) << 8 | UInt32(header[8]))
            & 0x7fff_ffff
        if type == Self.dataFrame && flags & Self.padded != 0 && length > 0 {
            part = .padLength(stream: stream, flags: flags, remaining: length)
        } else if type == Self.dataFrame {
            part = .data(stream: stream, flags: flags, remaining: length, padding: 0)
        } else {
            if type == Self.headersFrame && stream & 1 == 1 && streams[stream] == nil {
                if streams.count >= Self.maximumTrackedStreams { streams.removeValue(forKey: streams.keys.min()!) }
                streams[stream] = MessageCursor()
            }
            part = .skipped(stream: stream, type: type, flags: flags, remaining: length)
        }
        finishFrameIfDone()
    }

    /// At the end of a frame: forgets a stream the client has ended or reset.
    private mutating func finishFrameIfDone() {
        switch part {
        case .data(let stream, let flags, 0, 0):
            if flags & Self.endStream != 0 { streams[stream] = nil }
            part = .header([])
        case .skipped(let stream, let type, let flags, 0):
            if type == Self.resetFrame || (type == Self.headersFrame && flags & Self.endStream != 0) {
                streams[stream] = nil
            }
            part = .header([])
        default:
            break
        }
    }

    /// Follows `stream`'s gRPC messages through `data`; returns a refusal for a message over the
    /// limit.
    private mutating func feed(_ stream: UInt32, _ data: UnsafeRawBufferPointer) -> Refusal? {
        // Data on a stream the client has not opened (or has ended) is the HTTP/2 handler's to
        // refuse; answering it would let a client make the server write for nothing.
        guard var cursor = streams[stream], !cursor.refused else { return nil }
        defer { streams[stream] = cursor }
        var index = 0
        while index < data.count && !cursor.refused {
            if cursor.bodyRemaining > 0 {
                let taken = Int(min(cursor.bodyRemaining, UInt64(data.count - index)))
                cursor.bodyRemaining -= UInt64(taken)
                index += taken
                continue
            }
            let taken = min(5 - cursor.prefix.count, data.count - index)
            cursor.prefix.append(contentsOf: data[index..<index + taken])
            index += taken
            guard cursor.prefix.count == 5 else { continue }
            let length = cursor.prefix[1...4].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            cursor.prefix.removeAll(keepingCapacity: true)
            if length > limit {
                cursor.refused = true
                return Refusal(streamID: stream, declaredLength: length)
            }
            cursor.bodyRemaining = length
        }
        return nil
    }
}

/// A gRPC response of trailers only, as one HTTP/2 HEADERS frame, HPACK-encoded without the
/// dynamic table.
enum TrailersOnlyResponse {
    static func write(streamID: UInt32, status: Int, message: String, into buffer: inout ByteBuffer) {
        var block: [UInt8] = [0x88]  // ":status: 200", static table index 8
        literal("content-type", "application/grpc", into: &block)
        literal("grpc-status", "\(status)", into: &block)
        literal("grpc-message", percentEncoded(message), into: &block)
        buffer.writeInteger(UInt8(truncatingIfNeeded: block.count >> 16))
        buffer.writeInteger(UInt16(truncatingIfNeeded: block.count))
        buffer.writeInteger(UInt8(1))  // HEADERS
        buffer.writeInteger(UInt8(0x1 | 0x4))  // END_STREAM | END_HEADERS
        buffer.writeInteger(streamID & 0x7fff_ffff)
        buffer.writeBytes(block)
    }

    /// A "literal header field without indexing — new name" (RFC 7541 §6.2.2).
    private static func literal(_ name: String, _ value: String, into block: inout [UInt8]) {
        block.append(0x00)
        for string in [name, value] {
            integer(string.utf8.count, prefixBits: 7, into: &block)
            block.append(contentsOf: string.utf8)
        }
    }

    /// An HPACK integer with an N-bit prefix, Huffman flag clear (RFC 7541 §5.1).
    private static func integer(_ value: Int, prefixBits: Int, into block: inout [UInt8]) {
        let limit = (1 << prefixBits) - 1
        guard value >= limit else {
            block.append(UInt8(value))
            return
        }
        block.append(UInt8(limit))
        var rest = value - limit
        while rest >= 128 {
            block.append(UInt8(rest % 128 + 128))
            rest /= 128
        }
        block.append(UInt8(rest))
    }

    /// grpc-message is percent-encoded: bytes outside printable ASCII, and "%".
    private static func percentEncoded(_ message: String) -> String {
        var encoded = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7e && byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded
    }
}
