import Testing

@testable import JobWorkerAPI

@Suite("Request size guard")
struct RequestFrameParserTests {
    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        [UInt8(payload.count >> 16), UInt8(payload.count >> 8 & 0xff), UInt8(payload.count & 0xff), type, flags]
            + [UInt8(stream >> 24), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)]
            + payload
    }

    /// A gRPC message prefix declaring `length` bytes.
    static func prefix(_ length: UInt32) -> [UInt8] {
        [0, UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
    }

    func refusals(_ bytes: [UInt8], limit: UInt64 = 1000) -> [RequestFrameParser.Refusal] {
        var parser = RequestFrameParser(limit: limit)
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        return (preface + bytes).withUnsafeBytes { parser.consume($0) }
    }

    @Test("a message over the limit on a stream the client opened is refused once; under it, or elsewhere, never")
    func onlyOpenedStreams() {
        let headers = Self.frame(type: 1, flags: 0x4, stream: 1, payload: [0x82])
        let over = Self.frame(type: 0, flags: 0, stream: 1, payload: Self.prefix(5000))
        #expect(refusals(headers + over) == [.init(streamID: 1, declaredLength: 5000)])
        #expect(refusals(headers + Self.frame(type: 0, flags: 0, stream: 1, payload: Self.prefix(999))).isEmpty)
        // Never opened, stream 0, an even (server) id: the HTTP/2 handler's to refuse.
        for stream in [3, 0, 2] as [UInt32] {
            #expect(
                refusals(headers + Self.frame(type: 0, flags: 0, stream: stream, payload: Self.prefix(5000))).isEmpty)
        }
        // Once per stream, and not again after its end.
        let ended = Self.frame(type: 0, flags: 0x1, stream: 1, payload: Self.prefix(5000))
        #expect(refusals(headers + over + over + ended + ended).count == 1)
        // A message split over two DATA frames is still seen.
        let split =
            Self.frame(type: 0, flags: 0, stream: 1, payload: Array(Self.prefix(5000)[..<2]))
            + Self.frame(type: 0, flags: 0, stream: 1, payload: Array(Self.prefix(5000)[2...]))
        #expect(refusals(headers + split).count == 1)
    }
}
