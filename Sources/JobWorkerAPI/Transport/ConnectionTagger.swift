import NIOCore

/// Adds a header naming its connection to every request on a server connection, so that each
/// RPC finds its connection's identity by the connection itself rather than by an address.
///
/// gRPC tells a stream its connection only as the peer's address string, which a closed and
/// re-opened connection can reuse. This handler sits between the TLS handler and the HTTP/2
/// handler and follows the client's frames; after each frame that ends a header block
/// (END_HEADERS on HEADERS or CONTINUATION) it moves END_HEADERS to a CONTINUATION frame of its
/// own holding one more header, `jobworker-connection: <this connection's token>`, encoded as a
/// literal "without indexing" (no HPACK state changes). It does so only when the client's block
/// ends between two representations (`HeaderBlockBoundary`): then the added field is whole, and
/// last, and no unfinished string of the client's can take it in. A block that does not end so
/// is malformed: it gets an empty CONTINUATION, and the HTTP/2 decoder refuses it. The token is
/// 128 random bits, never sent to the client; the resolver accepts a request only with exactly
/// one such header. Nothing else changes: frame lengths, flow control and every other byte pass
/// through as received, as slices of the reads.
final class ConnectionTagger: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The header's name.
    static let headerName = "jobworker-connection"

    private static let headersFrame: UInt8 = 0x1
    private static let continuationFrame: UInt8 = 0x9
    private static let endHeaders: UInt8 = 0x4
    private static let padded: UInt8 = 0x8
    private static let priority: UInt8 = 0x20

    /// Where the reader is in the client's bytes.
    private enum Position {
        case preface(remaining: Int)
        /// Byte `index` of a frame header, and the fields read so far.
        case header(index: Int, length: Int, type: UInt8, flags: UInt8, stream: UInt32)
        /// A frame's payload.
        case payload(Payload)
    }

    private struct Payload {
        var remaining: Int
        var isHeaderBlock: Bool
        /// HEADERS: its pad length byte is still to come.
        var padLengthPending: Bool
        /// HEADERS: priority bytes still to come.
        var priorityRemaining: Int
        /// Trailing padding (after the fragment), once the pad length is known.
        var padding: Int
    }

    /// The header block fragment of the CONTINUATION frame added: the literal header field.
    private let literal: [UInt8]
    private var position = Position.preface(remaining: 24)
    private var block = HeaderBlockBoundary()
    /// The stream whose header block ends with the current frame, if it does.
    private var endsHeaderBlock: UInt32?

    init(token: String) {
        var literal: [UInt8] = [0x00]  // literal header field without indexing, new name
        for string in [Self.headerName, token] {
            precondition(string.utf8.count < 127, "one-byte HPACK lengths")
            literal.append(UInt8(string.utf8.count))
            literal.append(contentsOf: string.utf8)
        }
        self.literal = literal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let input = unwrapInboundIn(data)
        var passFrom = input.readerIndex
        let end = input.writerIndex
        var index = passFrom
        /// Passes the bytes not yet passed, up to `index`.
        func flush() {
            if index > passFrom {
                context.fireChannelRead(wrapInboundOut(input.getSlice(at: passFrom, length: index - passFrom)!))
            }
            passFrom = index
        }
        while index < end {
            switch position {
            case .preface(let remaining):
                let taken = min(remaining, end - index)
                index += taken
                position =
                    remaining == taken
                    ? .header(index: 0, length: 0, type: 0, flags: 0, stream: 0)
                    : .preface(remaining: remaining - taken)
            case .header(let at, var length, var type, var flags, var stream):
                let byte = input.getInteger(at: index, as: UInt8.self)!
                switch at {
                case 0...2: length = length << 8 | Int(byte)
                case 3: type = byte
                case 4:
                    flags = byte
                    if (type == Self.headersFrame || type == Self.continuationFrame) && flags & Self.endHeaders != 0 {
                        // END_HEADERS moves to the frame added after this one.
                        flush()
                        var changed = context.channel.allocator.buffer(capacity: 1)
                        changed.writeInteger(flags & ~Self.endHeaders)
                        context.fireChannelRead(wrapInboundOut(changed))
                        passFrom = index + 1
                    }
                default: stream = stream << 8 | UInt32(byte)
                }
                index += 1
                if at < 8 {
                    position = .header(index: at + 1, length: length, type: type, flags: flags, stream: stream)
                } else {
                    startPayload(length: length, type: type, flags: flags, stream: stream & 0x7fff_ffff)
                    if case .payload(let payload) = position, payload.remaining == 0 { endFrame(flush, context) }
                }
            case .payload(var payload):
                if !payload.isHeaderBlock {
                    let taken = min(payload.remaining, end - index)
                    index += taken
                    payload.remaining -= taken
                } else {
                    // Header blocks are small: byte by byte, through the block's structure.
                    let byte = input.getInteger(at: index, as: UInt8.self)!
                    index += 1
                    payload.remaining -= 1
                    if payload.padLengthPending {
                        payload.padLengthPending = false
                        payload.padding = Int(byte)
                    } else if payload.priorityRemaining > 0 {
                        payload.priorityRemaining -= 1
                    } else if payload.remaining >= payload.padding {
                        block.consume(byte)
                    }
                }
                position = .payload(payload)
                if payload.remaining == 0 { endFrame(flush, context) }
            }
        }
        flush()
    }

    private func startPayload(length: Int, type: UInt8, flags: UInt8, stream: UInt32) {
        let isHeaderBlock = type == Self.headersFrame || type == Self.continuationFrame
        if type == Self.headersFrame { block = HeaderBlockBoundary() }
        if isHeaderBlock && flags & Self.endHeaders != 0 { endsHeaderBlock = stream }
        let isHeaders = type == Self.headersFrame
        position = .payload(
            Payload(
                remaining: length, isHeaderBlock: isHeaderBlock,
                padLengthPending: isHeaders && flags & Self.padded != 0,
                priorityRemaining: isHeaders && flags & Self.priority != 0 ? 5 : 0, padding: 0))
    }

    /// At the end of a frame: after one that ended a header block, the CONTINUATION that ends it
    /// now (with the tag when the client's block ended on a boundary).
    private func endFrame(_ flush: () -> Void, _ context: ChannelHandlerContext) {
        position = .header(index: 0, length: 0, type: 0, flags: 0, stream: 0)
        guard let stream = endsHeaderBlock.take() else { return }
        flush()
        let fragment = block.isAtBoundary ? literal : []
        var frame = context.channel.allocator.buffer(capacity: 9 + fragment.count)
        frame.writeInteger(UInt8(0))
        frame.writeInteger(UInt16(fragment.count))
        frame.writeInteger(Self.continuationFrame)
        frame.writeInteger(Self.endHeaders)
        frame.writeInteger(stream)
        frame.writeBytes(fragment)
        context.fireChannelRead(wrapInboundOut(frame))
    }
}
