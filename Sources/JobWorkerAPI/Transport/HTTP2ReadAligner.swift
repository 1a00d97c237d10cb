import NIOCore

/// Sits between the TLS handler and the HTTP/2 handler of a client connection and moves the end
/// of each inbound read to a point where swift-nio-http2's frame decoder starts over with an
/// empty buffer: a frame boundary, or inside the payload of a DATA frame.
///
/// Why: the decoder keeps the bytes of a read that ends inside a frame header, or right after
/// a DATA frame's header, at the end of its buffer and appends the next read behind them. While
/// gRPC still holds slices of that buffer (messages not yet consumed), the append copies the
/// whole buffer and grows it by the read, and it never shrinks. A DATA frame's header travels in
/// a TLS record of its own, so reads often end right after one once a client falls behind (1–4 %
/// of reads for each of 20 streaming clients here): such a client ended up copying megabytes with
/// every read, and one of 20 took as much CPU as the whole server (docs/DESIGN.md). Holding back
/// those few bytes until the next read keeps the decoder's buffer as small as one read.
///
/// Only the reading side changes: the bytes delivered, in order, are exactly those received.
final class HTTP2ReadAligner: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The size of an HTTP/2 frame header (RFC 9113 §4.1).
    static let frameHeaderSize = 9

    /// A frame at most this long that is not the payload of a DATA frame is delivered whole.
    /// Longer ones are passed on at once, so that the decoder rejects a frame beyond the
    /// negotiated maximum as soon as its header arrives, without this handler buffering it.
    private let largestHeldFrame: Int
    /// Payload bytes of the current frame that are still to come and pass straight through.
    private var payloadRemaining = 0
    /// The start of a frame whose end is not a safe place to stop, kept for the next read.
    private var held: ByteBuffer?

    init(maximumFrameSize: Int) {
        self.largestHeldFrame = maximumFrameSize
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        if var held = held.take() {
            held.writeBuffer(&input)
            input = held
        }
        let deliverable = deliverableCount(of: input)
        if deliverable < input.readableBytes {
            held = input.getSlice(at: input.readerIndex + deliverable, length: input.readableBytes - deliverable)
        }
        if deliverable > 0 {
            context.fireChannelRead(wrapInboundOut(input.getSlice(at: input.readerIndex, length: deliverable)!))
        }
    }

    /// How many of `input`'s bytes end at a safe place; advances the frame cursor past them.
    private func deliverableCount(of input: ByteBuffer) -> Int {
        let available = input.readableBytes
        var cursor = 0
        while cursor < available {
            if payloadRemaining > 0 {
                let passing = min(payloadRemaining, available - cursor)
                payloadRemaining -= passing
                cursor += passing
                continue
            }
            guard available - cursor >= Self.frameHeaderSize,
                let header = FrameHeader(input, at: input.readerIndex + cursor)
            else { break }
            let frameEnd = cursor + Self.frameHeaderSize + header.length
            if frameEnd <= available {
                cursor = frameEnd
            } else if header.isUnpaddedData && available > cursor + Self.frameHeaderSize {
                // Ending inside a DATA payload is safe: the decoder hands on what it has.
                payloadRemaining = frameEnd - available
                cursor = available
            } else if header.length > largestHeldFrame {
                // Longer than the peer may send: the decoder refuses it on sight.
                payloadRemaining = frameEnd - available
                cursor = available
            } else {
                break
            }
        }
        return cursor
    }

    /// The fields of a frame header this handler needs.
    private struct FrameHeader {
        var length: Int
        var isUnpaddedData: Bool

        init?(_ buffer: ByteBuffer, at index: Int) {
            guard let high = buffer.getInteger(at: index, as: UInt8.self),
                let low = buffer.getInteger(at: index + 1, as: UInt16.self),
                let type = buffer.getInteger(at: index + 3, as: UInt8.self),
                let flags = buffer.getInteger(at: index + 4, as: UInt8.self)
            else { return nil }
            length = Int(high) << 16 | Int(low)
            // DATA is type 0; PADDED is flag 0x8.
            isUnpaddedData = type == 0 && flags & 0x8 == 0
        }
    }
}
