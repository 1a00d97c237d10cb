import NIOCore

/// Adds a header naming its connection to every request on a server connection, so that each
/// RPC finds its connection's identity by the connection itself rather than by an address.
///
/// gRPC tells a stream its connection only as the peer's address string, which a closed and
/// re-opened connection can reuse. This handler sits between the TLS handler and the HTTP/2
/// handler and follows the client's frames; after each frame that ends a header block
/// (END_HEADERS on HEADERS or CONTINUATION) it moves END_HEADERS to a CONTINUATION frame of its
/// own holding one more header, `jobworker-connection: <this connection's token>`, encoded as a
/// literal "without indexing" (no HPACK state changes). The token is 128 random bits, never sent
/// to the client; the header comes last in the block, so the last value of that name is always
/// ours, whatever the client sent. Nothing else is changed: frame lengths, flow control and
/// every other byte pass through as received.
final class ConnectionTagger: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The header's name.
    static let headerName = "jobworker-connection"

    private static let frameHeaderSize = 9
    private static let headersFrame: UInt8 = 0x1
    private static let continuationFrame: UInt8 = 0x9
    private static let endHeaders: UInt8 = 0x4

    /// The header block fragment of the CONTINUATION frame added: the literal header field.
    private let literal: [UInt8]
    private var prefaceRemaining = 24
    private var header: [UInt8] = []
    private var payloadRemaining = 0
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
        var input = unwrapInboundIn(data)
        while input.readableBytes > 0 {
            if prefaceRemaining > 0 {
                let taken = min(prefaceRemaining, input.readableBytes)
                prefaceRemaining -= taken
                pass(input.readSlice(length: taken)!, context)
            } else if payloadRemaining > 0 {
                let taken = min(payloadRemaining, input.readableBytes)
                payloadRemaining -= taken
                pass(input.readSlice(length: taken)!, context)
                if payloadRemaining == 0 { finishFrame(context) }
            } else {
                // A frame header, held until whole: its flags may change.
                let taken = min(Self.frameHeaderSize - header.count, input.readableBytes)
                header += input.readBytes(length: taken)!
                if header.count == Self.frameHeaderSize { startFrame(context) }
            }
        }
    }

    private func startFrame(_ context: ChannelHandlerContext) {
        let type = header[3]
        if (type == Self.headersFrame || type == Self.continuationFrame) && header[4] & Self.endHeaders != 0 {
            header[4] &= ~Self.endHeaders
            endsHeaderBlock =
                (UInt32(header[5]) << 24 | UInt32(header[6]) << 16 | UInt32(header[7]) << 8 | UInt32(header[8]))
                & 0x7fff_ffff
        }
        payloadRemaining = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
        pass(context.channel.allocator.buffer(bytes: header), context)
        header.removeAll(keepingCapacity: true)
        if payloadRemaining == 0 { finishFrame(context) }
    }

    /// After a frame that ended a header block: the CONTINUATION that ends it now.
    private func finishFrame(_ context: ChannelHandlerContext) {
        guard let stream = endsHeaderBlock.take() else { return }
        var frame = context.channel.allocator.buffer(capacity: Self.frameHeaderSize + literal.count)
        frame.writeInteger(UInt8(0))
        frame.writeInteger(UInt16(literal.count))
        frame.writeInteger(Self.continuationFrame)
        frame.writeInteger(Self.endHeaders)
        frame.writeInteger(stream)
        frame.writeBytes(literal)
        pass(frame, context)
    }

    private func pass(_ bytes: ByteBuffer, _ context: ChannelHandlerContext) {
        context.fireChannelRead(wrapInboundOut(bytes))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
    }
}
