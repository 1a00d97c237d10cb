import JobWorkerTestPrograms
import NIOCore
import NIOEmbedded
import Testing

@testable import JobWorkerAPI

/// `HTTP2ReadAligner` passes on exactly the bytes it receives, and ends every read it passes
/// on at a frame boundary or inside a DATA frame's payload, however the input was cut.
@Suite("HTTP/2 read alignment")
struct HTTP2ReadAlignerTests {
    /// One frame of a test stream, and where its bytes lie in the stream.
    struct Frame {
        var type: UInt8
        var flags: UInt8 = 0
        var length: Int

        static let data: UInt8 = 0
        static let headers: UInt8 = 1
        static let settings: UInt8 = 4
        static let ping: UInt8 = 6
        static let windowUpdate: UInt8 = 8
        static let padded: UInt8 = 0x8
    }

    /// A stream of the frames a client receives, including a DATA frame with no payload and a
    /// padded one, which must be delivered whole.
    static let frames: [Frame] = [
        Frame(type: Frame.settings, length: 18),
        Frame(type: Frame.headers, flags: 0x4, length: 30),
        Frame(type: Frame.data, length: 300),
        Frame(type: Frame.data, length: 0),
        Frame(type: Frame.data, length: 1),
        Frame(type: Frame.windowUpdate, length: 4),
        Frame(type: Frame.data, flags: Frame.padded, length: 50),
        Frame(type: Frame.data, length: 200),
        Frame(type: Frame.ping, length: 8),
        Frame(type: Frame.data, flags: 0x1, length: 120),
        Frame(type: Frame.headers, flags: 0x5, length: 40),
    ]

    /// The serialized stream, and every offset at which a read may end.
    static func stream() -> (bytes: [UInt8], safeEnds: Set<Int>) {
        var bytes: [UInt8] = []
        var safeEnds: Set<Int> = [0]
        for frame in frames {
            let payloadStart = bytes.count + 9
            bytes += [UInt8(frame.length >> 16), UInt8(frame.length >> 8 & 0xff), UInt8(frame.length & 0xff)]
            bytes += [frame.type, frame.flags, 0, 0, 0, 1]
            bytes += (0..<frame.length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ bytes.count) }
            if frame.type == Frame.data && frame.flags & Frame.padded == 0 && frame.length > 0 {
                safeEnds.formUnion((payloadStart + 1)..<bytes.count)
            }
            safeEnds.insert(bytes.count)
        }
        return (bytes, safeEnds)
    }

    /// Feeds `pieces` through the handler; returns the reads it passed on.
    func deliver(_ pieces: [ArraySlice<UInt8>], maximumFrameSize: Int = 1 << 14) throws -> [[UInt8]] {
        let channel = EmbeddedChannel(handler: HTTP2ReadAligner(maximumFrameSize: maximumFrameSize))
        var reads: [[UInt8]] = []
        for piece in pieces {
            try channel.writeInbound(ByteBuffer(bytes: piece))
            while var read = try channel.readInbound(as: ByteBuffer.self) {
                reads.append(read.readBytes(length: read.readableBytes)!)
            }
        }
        _ = try channel.finish()
        return reads
    }

    func expectAligned(_ reads: [[UInt8]], _ bytes: [UInt8], _ safeEnds: Set<Int>, cuts: [Int]) {
        #expect(Array(reads.joined()) == bytes, "cut at \(cuts)")
        var end = 0
        for read in reads {
            #expect(!read.isEmpty, "cut at \(cuts)")
            end += read.count
            let endsSafely = safeEnds.contains(end)
            #expect(endsSafely, "a read ends at \(end), cut at \(cuts)")
        }
    }

    @Test("every single cut")
    func everySingleCut() throws {
        let (bytes, safeEnds) = Self.stream()
        for cut in 0...bytes.count {
            let reads = try deliver([bytes[..<cut], bytes[cut...]])
            expectAligned(reads, bytes, safeEnds, cuts: [cut])
        }
    }

    @Test("random cuts, many of them one byte apart")
    func randomCuts() throws {
        let (bytes, safeEnds) = Self.stream()
        var generator = SplitMix64(seed: 0x5eed)
        for _ in 0..<2_000 {
            let count = Int.random(in: 1...40, using: &generator)
            var cuts = (0..<count).map { _ in Int.random(in: 0...bytes.count, using: &generator) }
            // Runs of one-byte pieces, so that headers arrive a byte at a time.
            let start = Int.random(in: 0..<bytes.count - 12, using: &generator)
            cuts += start..<start + 12
            cuts = Array(Set(cuts)).sorted()
            var pieces: [ArraySlice<UInt8>] = []
            var previous = 0
            for cut in cuts + [bytes.count] {
                pieces.append(bytes[previous..<cut])
                previous = cut
            }
            expectAligned(try deliver(pieces), bytes, safeEnds, cuts: cuts)
        }
    }

    @Test("a frame longer than the maximum is passed on at once, for the decoder to refuse")
    func oversizedFrame() throws {
        let header: [UInt8] = [0, 1, 0, Frame.headers, 0x4, 0, 0, 0, 1]  // 256 bytes of HEADERS
        let reads = try deliver([(header + [UInt8](repeating: 1, count: 10))[...]], maximumFrameSize: 128)
        #expect(reads == [header + [UInt8](repeating: 1, count: 10)])
    }
}
