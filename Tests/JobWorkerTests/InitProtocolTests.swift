import CJobLauncher
import Foundation
import JobWorkerTestPrograms
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The worker ↔ init wire format (`init_protocol.c`): what the init accepts must be exactly what
/// the worker sends; anything else — random bytes, truncated frames — is refused without reading
/// outside the buffer.
@Suite("Init protocol")
struct InitProtocolTests {
    /// Encodes a job as the worker does.
    func encode(path: String, argv: [String], envp: [String], directory: String?) throws -> (jw_job_header, [CChar]) {
        var header = jw_job_header()
        var strings: UnsafeMutablePointer<CChar>?
        let status = withCStrings(argv) { argv in
            withCStrings(envp) { envp in
                jw_encode_job(path, argv, envp, directory, 1, 1000, 1001, &header, &strings)
            }
        }
        try #require(status == 0)
        let buffer = try #require(strings)
        defer { free(buffer) }
        return (header, Array(UnsafeBufferPointer(start: buffer, count: Int(header.strings_size))))
    }

    /// Decodes, and checks that every string of an accepted job lies inside the buffer.
    func decode(_ header: jw_job_header, _ bytes: [CChar]) -> (
        path: String, argv: [String], envp: [String], directory: String
    )? {
        bytes.withUnsafeBufferPointer { buffer -> (String, [String], [String], String)? in
            var job = jw_job()
            guard jw_decode_job([header], buffer.baseAddress, buffer.count, &job) == 0 else { return nil }
            defer { jw_job_free(&job) }
            let range = UInt(bitPattern: buffer.baseAddress)..<UInt(bitPattern: buffer.baseAddress! + buffer.count)
            func string(_ pointer: UnsafePointer<CChar>?) -> String {
                let pointer = pointer!
                #expect(range.contains(UInt(bitPattern: pointer)))
                return String(cString: pointer)
            }
            func strings(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
                var result: [String] = []
                var index = 0
                while let element = array![index] {
                    result.append(string(element))
                    index += 1
                }
                return result
            }
            return (string(job.path), strings(job.argv), strings(job.envp), string(job.working_directory))
        }
    }

    @Test("a job round-trips through encode and decode")
    func roundTrip() throws {
        let (header, bytes) = try encode(
            path: "/bin/echo", argv: ["echo", "a b", ""], envp: ["PATH=/bin", "X="], directory: "/tmp")
        #expect(header.argc == 3)
        #expect(header.envc == 2)
        #expect(header.change_credentials == 1)
        let decoded = try #require(decode(header, bytes))
        #expect(decoded.path == "/bin/echo")
        #expect(decoded.argv == ["echo", "a b", ""])
        #expect(decoded.envp == ["PATH=/bin", "X="])
        #expect(decoded.directory == "/tmp")
    }

    @Test("10,000 random frames and every truncation of a valid one are refused or decoded in bounds")
    func fuzzedFrames() throws {
        var random = SplitMix64(seed: 0x6A6F_6277_6F72_6B65)
        var accepted = 0
        for _ in 0..<10_000 {
            let length = Int.random(in: 0...64, using: &random)
            var bytes = (0..<length).map { _ in CChar(bitPattern: UInt8.random(in: 0...255, using: &random)) }
            // Half of the frames have NULs often enough to look like strings.
            if Bool.random(using: &random) {
                for index in bytes.indices where UInt8.random(in: 0...3, using: &random) == 0 { bytes[index] = 0 }
            }
            var header = jw_job_header()
            header.argc = Bool.random(using: &random) ? UInt32.random(in: 0...4, using: &random) : random.next32()
            header.envc = Bool.random(using: &random) ? UInt32.random(in: 0...4, using: &random) : random.next32()
            header.strings_size = Bool.random(using: &random) ? UInt32(length) : random.next32()
            header.change_credentials = UInt32.random(in: 0...2, using: &random)
            if let decoded = decode(header, bytes) {
                accepted += 1
                #expect(decoded.argv.count == Int(header.argc))
                #expect(decoded.envp.count == Int(header.envc))
                #expect(!decoded.path.isEmpty)
            }
        }
        // Some random frames are valid jobs: the decoder is exercised on both sides.
        #expect(accepted > 0)

        let (header, bytes) = try encode(path: "/bin/true", argv: ["true", "x"], envp: ["A=b"], directory: nil)
        #expect(decode(header, bytes) != nil)
        for length in 0..<bytes.count {
            var truncated = header
            truncated.strings_size = UInt32(length)
            #expect(decode(truncated, Array(bytes.prefix(length))) == nil, "truncated to \(length) bytes")
            // A header that still announces the full size, over fewer bytes.
            #expect(decode(header, Array(bytes.prefix(length))) == nil)
        }
    }

    @Test("replies: only the three kinds an init sends, with their fields in range")
    func replies() {
        func decode(_ values: [Int32]) -> jw_init_reply? {
            var reply = jw_init_reply()
            let status = values.withUnsafeBytes { jw_decode_reply($0.baseAddress, $0.count, &reply) }
            return status == 0 ? reply : nil
        }
        #expect(decode([Int32(JW_REPLY_STARTED.rawValue), 0, 0, 0])?.kind == Int32(JW_REPLY_STARTED.rawValue))
        #expect(decode([Int32(JW_REPLY_FAILED.rawValue), Int32(JW_STEP_EXEC.rawValue), ENOENT, 0])?.error == ENOENT)
        #expect(decode([Int32(JW_REPLY_ENDED.rawValue), 0, 0, 9])?.status == 9)
        #expect(decode([Int32(JW_REPLY_FAILED.rawValue), 14, ENOENT, 0]) == nil)  // no step 14
        #expect(decode([Int32(JW_REPLY_ENDED.rawValue), 0, 0, 0x10000]) == nil)
        #expect(decode([4, 0, 0, 0]) == nil)
        #expect(decode([Int32(JW_REPLY_STARTED.rawValue), 0, 0]) == nil)  // truncated
        var random = SplitMix64(seed: 42)
        for _ in 0..<10_000 {
            let values = (0..<4).map { _ in Int32(bitPattern: random.next32()) }
            if let reply = decode(values) {
                #expect((1...3).contains(reply.kind))
            }
        }
    }

    @Test("exit records: decimal wait statuses round-trip; anything else is refused")
    func exitRecords() {
        func parse(_ text: String) -> Int32? {
            var status: Int32 = -1
            let bytes = Array(text.utf8)
            let result = bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { jw_parse_exit_record($0.baseAddress, $0.count, &status) }
            }
            return result == 0 ? status : nil
        }
        for status: Int32 in [0, 9, 256, 0x7f00, 0xffff] {
            var buffer = [CChar](repeating: 0, count: Int(JW_EXIT_RECORD_MAX))
            let length = jw_format_exit_record(status, &buffer)
            let text = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(parse(text) == status)
        }
        for garbage in ["", "\n", "-1", "65536", "12a", " 1", "1\n\n", "999999"] {
            #expect(parse(garbage) == nil, "\(garbage.debugDescription)")
        }
    }

    @Test("every launch step has a name in the table beside the C enum")
    func stepNames() {
        for value in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19] as [UInt32] {
            #expect(jw_step_name(jw_step(value)) != nil, "step \(value)")
        }
        #expect(jw_step_name(jw_step(14)) == nil)
        #expect(String(cString: jw_step_name(JW_STEP_EXEC)) == "execve")
    }
}

extension RandomNumberGenerator {
    mutating func next32() -> UInt32 { UInt32(truncatingIfNeeded: next()) }
}

private func withCStrings<Result>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result)
    -> Result
{
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
