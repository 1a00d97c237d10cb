import Testing

@testable import JobWorkerAPI

@Suite("HPACK representation boundaries")
struct HeaderBlockBoundaryTests {
    func boundaries(_ bytes: [UInt8]) -> [Bool] {
        var block = HeaderBlockBoundary()
        return bytes.map { byte in
            block.consume(byte)
            return block.isAtBoundary
        }
    }

    @Test("each kind of representation ends where RFC 7541 says, and not before")
    func representations() {
        // Indexed (1 byte; 2 bytes with a continued index).
        #expect(boundaries([0x82]) == [true])
        #expect(boundaries([0xff, 0x81, 0x01]) == [false, false, true])
        // Literal with incremental indexing, indexed name (6-bit prefix) and a 2-byte value.
        #expect(boundaries([0x44, 0x02, 0x61, 0x62]) == [false, false, false, true])
        // Literal without indexing, new name "a", Huffman value of 1 byte.
        #expect(boundaries([0x00, 0x01, 0x61, 0x81, 0x1f]) == [false, false, false, false, true])
        // Never indexed, new name, empty value.
        #expect(boundaries([0x10, 0x01, 0x61, 0x00]) == [false, false, false, true])
        // Dynamic table size update, with a continued integer.
        #expect(boundaries([0x3f, 0xe1, 0x1f]) == [false, false, true])
        // A string length continued over two bytes: 127 + 1 = 128 bytes of value.
        let long = [0x40, 0x01, 0x61, 0x7f, 0x01] + [UInt8](repeating: 0x62, count: 128)
        let marks = boundaries(long)
        #expect(marks.dropLast().allSatisfy { !$0 } && marks.last == true)
    }
}
