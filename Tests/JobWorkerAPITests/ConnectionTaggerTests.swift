import NIOCore
import NIOEmbedded
import Testing

@testable import JobWorkerAPI

/// `ConnectionTagger` ends every header block with a CONTINUATION frame of its own carrying the
/// connection's token, and changes nothing else, however the client's bytes were cut.
@Suite("Connection tagging")
struct ConnectionTaggerTests {
    static let token = "0123456789abcdef0123456789abcdef"

    /// A frame: 9-byte header and payload.
    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        [UInt8(payload.count >> 16), UInt8(payload.count >> 8 & 0xff), UInt8(payload.count & 0xff), type, flags]
            + [UInt8(stream >> 24), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)]
            + payload
    }

    /// The header block fragment the tagger adds.
    static var literal: [UInt8] {
        [0x00, UInt8(ConnectionTagger.headerName.utf8.count)] + Array(ConnectionTagger.headerName.utf8)
            + [UInt8(token.utf8.count)] + Array(token.utf8)
    }

    /// What a client sends, and what the HTTP/2 handler must get from the tagger.
    static func streams() -> (sent: [UInt8], expected: [UInt8]) {
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        let settings = frame(type: 4, flags: 0, stream: 0, payload: [0, 3, 0, 0, 0, 100])
        // :method GET, :scheme http, :path / (indexed), a: b (literal), a 2-byte index (0x7f 0x01).
        let block: [UInt8] = [0x82, 0x86, 0x84, 0x00, 0x01, 0x61, 0x01, 0x62, 0xff, 0x01]
        let tagged = { (stream: UInt32) in frame(type: 9, flags: 0x4, stream: stream, payload: literal) }
        let untagged = { (stream: UInt32) in frame(type: 9, flags: 0x4, stream: stream, payload: []) }
        var sent = preface + settings
        var expected = sent
        // HEADERS with END_HEADERS (and END_STREAM): the flag moves to the added frame.
        sent += frame(type: 1, flags: 0x5, stream: 1, payload: block)
        expected += frame(type: 1, flags: 0x1, stream: 1, payload: block) + tagged(1)
        // DATA, WINDOW_UPDATE: unchanged.
        let data = frame(type: 0, flags: 0x1, stream: 3, payload: (0..<300).map { UInt8($0 & 0xff) })
        let window = frame(type: 8, flags: 0, stream: 0, payload: [0, 0, 1, 0])
        sent += data + window
        expected += data + window
        // PADDED and PRIORITY: pad length, 5 priority bytes, the block, the padding.
        let paddedPayload = [3] + [0, 0, 0, 1, 16] + block + [0, 0, 0]
        sent += frame(type: 1, flags: 0x4 | 0x8 | 0x20, stream: 5, payload: paddedPayload)
        expected += frame(type: 1, flags: 0x8 | 0x20, stream: 5, payload: paddedPayload) + tagged(5)
        // A block split over HEADERS and CONTINUATION (the split inside a string).
        sent += frame(type: 1, flags: 0, stream: 7, payload: Array(block[..<5]))
        sent += frame(type: 9, flags: 0x4, stream: 7, payload: Array(block[5...]))
        expected += frame(type: 1, flags: 0, stream: 7, payload: Array(block[..<5]))
        expected += frame(type: 9, flags: 0, stream: 7, payload: Array(block[5...])) + tagged(7)
        // A block that ends inside a string (a name, and a value of 55 Huffman bytes to come)
        // would swallow the tag: it gets none, and the decoder refuses the block.
        let open: [UInt8] = [0x82, 0x00, 0x01, 0x78, 0xb7]
        sent += frame(type: 1, flags: 0x4, stream: 9, payload: open)
        expected += frame(type: 1, flags: 0, stream: 9, payload: open) + untagged(9)
        return (sent, expected)
    }

    func deliver(_ pieces: [ArraySlice<UInt8>]) throws -> [UInt8] {
        let channel = EmbeddedChannel(handler: ConnectionTagger(token: Self.token))
        var output: [UInt8] = []
        for piece in pieces {
            try channel.writeInbound(channel.allocator.buffer(bytes: piece))
            while let read = try channel.readInbound(as: ByteBuffer.self) { output += read.readableBytesView }
        }
        _ = try channel.finish()
        return output
    }

    @Test("whole, and cut at every single offset")
    func everyCut() throws {
        let (sent, expected) = Self.streams()
        #expect(try deliver([sent[...]]) == expected)
        for cut in 1..<sent.count {
            #expect(try deliver([sent[..<cut], sent[cut...]]) == expected, "cut at \(cut)")
        }
        #expect(try deliver(sent.map { [$0][...] }) == expected, "one byte at a time")
    }
}
