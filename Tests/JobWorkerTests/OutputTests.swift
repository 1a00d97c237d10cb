import Foundation
import JobWorker
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Output storage and streaming", .timeLimit(.minutes(2)))
struct OutputTests {
    @Test("50 concurrent live readers of ~50 MB each get every byte, in order")
    func concurrentReaders() async throws {
        try await withWorker { worker in
            let size: UInt64 = 50 * 1024 * 1024
            let job = try await worker.startHelper("pattern", "\(size)")
            let counts = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await readAndVerifyPattern(worker, job.id) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(counts == [UInt64](repeating: size, count: 50))
            #expect(try await worker.waitUntilEnded(job.id).outputBytes == size)
        }
    }

    @Test("a reader that starts after the end gets everything; one from an offset gets exactly the rest")
    func lateAndOffsetReaders() async throws {
        try await withWorker { worker in
            let size: UInt64 = 3 * 1024 * 1024 + 17
            let job = try await worker.startHelper("pattern", "\(size)")
            _ = try await worker.waitUntilEnded(job.id)
            #expect(try await readAndVerifyPattern(worker, job.id) == size)
            let offset: UInt64 = 1_234_567
            #expect(try await readAndVerifyPattern(worker, job.id, from: offset) == size - offset)
            #expect(try await worker.collectOutput(of: job.id, from: size).isEmpty)
        }
    }

    @Test("an offset past the end of a finished job's output is refused")
    func offsetPastEnd() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("echo-args", "abc")
            _ = try await worker.waitUntilEnded(job.id)
            #expect(throws: JobWorkerError(.invalidArgument, "offset 5 is beyond the end of the output (4 bytes)")) {
                try worker.output(of: job.id, from: 5)
            }
        }
    }

    @Test("binary output with all 256 byte values survives unchanged")
    func binaryOutput() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("all-bytes")
            _ = try await worker.waitUntilEnded(job.id)
            #expect(try await worker.collectOutput(of: job.id) == (0...255).map { UInt8($0) })
        }
    }

    @Test("stdout and stderr share one log and keep their relative order")
    func interleaving() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("interleave", "1000")
            _ = try await worker.waitUntilEnded(job.id)
            let expected = (0..<1000).map { "\($0 % 2 == 0 ? "out" : "err") \($0)\n" }.joined()
            #expect(String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self) == expected)
        }
    }

    @Test("a live reader waits for new output and ends when the job ends")
    func liveReaderEndsWithJob() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("trap-term")
            let reader = Task { try await worker.collectOutput(of: job.id) }
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            _ = try await worker.stop(job.id)
            let output = try await reader.value
            #expect(String(decoding: output, as: UTF8.self) == "ready\ngot SIGTERM\n")
        }
    }

    @Test("a cancelled reader wakes at once and releases its descriptor")
    func cancelledReader() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("sleep")
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            let outputPath = worker.configuration.stateDirectory + "/output/\(job.id).log"
            let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
            let reader = Task {
                var iterator = try worker.output(of: job.id).makeAsyncIterator()
                _ = try await iterator.next()  // "ready\n"
                startedContinuation.yield()
                return try await iterator.next()  // waits: the job prints nothing more
            }
            for await _ in started { break }
            #expect(try descriptorsOpen(on: outputPath) == 1)
            reader.cancel()
            await #expect(throws: CancellationError.self) { try await reader.value }
            #expect(try descriptorsOpen(on: outputPath) == 0)
            #expect(try worker.status(of: job.id).state == .running)
        }
    }

    @Test("a job writing 1 GiB does not grow the worker's memory")
    func largeOutputMemory() async throws {
        // In a process of its own, so that parallel tests do not move the resident size.
        await #expect(processExitsWith: .success) {
            try await streamOneGiBWithinMemoryBound()
        }
    }
}

private func streamOneGiBWithinMemoryBound() async throws {
    try await withWorker { worker in
        let size: UInt64 = 1024 * 1024 * 1024
        let before = try residentMemory()
        let job = try await worker.startHelper("pattern", "\(size)")
        // A live reader too: streaming must not buffer either.
        #expect(try await readAndVerifyPattern(worker, job.id) == size)
        let ended = try await worker.waitUntilEnded(job.id)
        #expect(ended.outputBytes == size)
        let growth = Int64(try residentMemory()) - Int64(before)
        // Bound: 64 MiB, far below the 1 GiB written (the file lives in the page cache).
        #expect(growth < 64 * 1024 * 1024, "resident memory grew by \(growth) bytes")
    }
}

/// How many descriptors of this process refer to `path`.
func descriptorsOpen(on path: String) throws -> Int {
    try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter { entry in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(entry)")) == path
    }.count
}

/// Reads the whole output of `id` from `offset`, checking every chunk against the pattern as it
/// arrives; returns the number of bytes read.
func readAndVerifyPattern(_ worker: Worker, _ id: JobID, from offset: UInt64 = 0) async throws -> UInt64 {
    var position = offset
    for try await chunk in try worker.output(of: id, from: offset) {
        guard chunkMatchesPattern(chunk, at: position) else {
            Issue.record("the chunk at offset \(position) differs from the pattern")
            return position - offset
        }
        position += UInt64(chunk.count)
    }
    return position - offset
}

/// The pattern, long enough that any chunk starting at any phase fits inside it.
private let patternBytes: [UInt8] = (0..<(JobOutput.maximumChunkSize + 251)).map { patternByte(at: UInt64($0)) }

/// Whether `chunk`, read at `position`, is exactly the pattern there (memcmp: debug builds are slow
/// per byte, and these tests check gigabytes).
private func chunkMatchesPattern(_ chunk: [UInt8], at position: UInt64) -> Bool {
    let phase = Int(position % 251)
    guard chunk.count <= patternBytes.count - phase else { return false }
    return chunk.withUnsafeBytes { actual in
        patternBytes.withUnsafeBytes { expected in
            memcmp(actual.baseAddress!, expected.baseAddress! + phase, chunk.count) == 0
        }
    }
}
