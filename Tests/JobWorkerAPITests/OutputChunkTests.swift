import SwiftProtobuf
import Testing

@testable import JobWorkerAPI

@Suite("Output chunks on the wire")
struct OutputChunkTests {
    @Test("a chunk decodes as the StreamJobOutputResponse it stands for, at any offset")
    func decodesAsTheMessage() throws {
        for (offset, count) in [(0, 0), (0, 1), (1, 127), (127, 128), (1 << 40, 300), (UInt64.max, 5)]
            as [(UInt64, Int)]
        {
            let data = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let chunk = OutputChunk(offset: offset, count: count) { $0.copyBytes(from: data) }
            let decoded = try Jobworker_V1_StreamJobOutputResponse(
                serializedBytes: chunk.wire.withUnsafeBytes { [UInt8]($0) })
            #expect(decoded.offset == offset && [UInt8](decoded.data) == data, "\(offset), \(count)")
            #expect(decoded.unknownFields.data.isEmpty)
        }
    }

    @Test("the largest chunk, with gRPC's prefix, fits one 128 KiB HTTP/2 DATA frame at any offset")
    func fitsOneFrame() {
        let chunk = OutputChunk(offset: .max, count: OutputChunk.maximumDataBytes) { _ in }
        #expect(5 + chunk.wire.count <= 128 * 1024)
    }
}
