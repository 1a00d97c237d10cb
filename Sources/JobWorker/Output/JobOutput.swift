import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A job's output from a given offset: everything already written, then live output as the job
/// writes it, ending once the job has ended and every byte has been delivered.
///
/// Each iterator reads the job's log file with its own descriptor and cursor, so any number of
/// readers run at their own pace and none of them can slow the job, which writes straight to the
/// file. When a reader has caught up it sleeps until the next write (inotify) or the job's end;
/// nothing polls. Cancelling the reading task wakes it at once and closes its descriptor.
public struct JobOutput: AsyncSequence, Sendable {
    /// A chunk of raw bytes, in order. Chunks have no relation to the job's write boundaries.
    public typealias Element = [UInt8]

    /// The largest chunk an iterator returns.
    public static let maximumChunkSize = 128 * 1024

    let path: String
    let offset: UInt64
    let changed: ChangeSignal
    let tally: ReaderTally

    public func makeAsyncIterator() -> Iterator {
        Iterator(reader: OutputReader(path: path, offset: offset, changed: changed, tally: tally))
    }

    public struct Iterator: AsyncIteratorProtocol {
        fileprivate let reader: OutputReader

        /// The next chunk, or nil at the end. Throws `CancellationError` when the task is
        /// cancelled, and `JobWorkerError` if the log cannot be read.
        public mutating func next() async throws -> [UInt8]? {
            try await reader.next()
        }

        /// For a reader that puts the bytes where it wants them (the API server reads them
        /// straight into the message it sends, with no copy in between): waits, as `next()`
        /// does, until output is readable at the cursor, and returns how many bytes are (at
        /// most `maximum`), or nil at the end. Follow it with `read(into:)`.
        public mutating func waitForBytes(atMost maximum: Int) async throws -> Int? {
            try await reader.waitForBytes(atMost: maximum)
        }

        /// Reads `buffer.count` bytes at the cursor, as `waitForBytes` reported them readable,
        /// and moves the cursor past them.
        public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws {
            try reader.read(into: buffer)
        }
    }
}

/// The state of one iterator: its descriptor and its cursor.
private final class OutputReader {
    private let path: String
    private let changed: ChangeSignal
    private var offset: UInt64
    /// Open from the first read until the end (or the reader's failure).
    private var descriptor: FileDescriptor?
    private var descriptorNumber: Int32 = -1
    private var isFinished = false
    private let tally: ReaderTally

    init(path: String, offset: UInt64, changed: ChangeSignal, tally: ReaderTally) {
        self.path = path
        self.offset = offset
        self.changed = changed
        self.tally = tally
        tally.count.add(1, ordering: .relaxed)
    }

    deinit {
        release()
        tally.count.subtract(1, ordering: .relaxed)
    }

    func next() async throws -> [UInt8]? {
        try await whenReadable { () throws(JobWorkerError) -> [UInt8]? in
            let chunk = try readChunk()
            offset += UInt64(chunk.count)
            return chunk.isEmpty ? nil : chunk
        }
    }

    func waitForBytes(atMost maximum: Int) async throws -> Int? {
        try await whenReadable { () throws(JobWorkerError) -> Int? in
            var info = stat()
            try systemCall("reading the output log's size") { fstat(descriptorNumber, &info) }
            return UInt64(info.st_size) > offset ? Int(min(UInt64(maximum), UInt64(info.st_size) - offset)) : nil
        }
    }

    /// The first result of `attempt` (nil: nothing readable at the cursor yet), sleeping on the
    /// job's change signal between attempts; nil once the job has ended and nothing is left.
    private func whenReadable<Result>(_ attempt: () throws(JobWorkerError) -> Result?) async throws -> Result? {
        guard !isFinished else { return nil }
        do {
            try openIfNeeded()
            while true {
                try Task.checkCancellation()
                // Taken before the attempt: if the job had already ended then, EOF is final.
                let before = changed.snapshot
                if let result = try attempt() { return result }
                if before.isFinished {
                    try checkOffsetWithinOutput()
                    release()
                    return nil
                }
                await changed.wait(whileGenerationIs: before.generation)
            }
        } catch {
            release()
            throw error
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(JobWorkerError) {
        var filled = 0
        while filled < buffer.count {
            let count = try systemCall("reading the output log") {
                pread(descriptorNumber, buffer.baseAddress! + filled, buffer.count - filled, off_t(offset))
            }
            // A log only grows: fewer bytes than its size said means it was cut behind our back.
            guard count > 0 else { throw JobWorkerError(.systemFailure, "the output log ended before its size") }
            filled += count
            offset += UInt64(count)
        }
    }

    private func openIfNeeded() throws(JobWorkerError) {
        guard descriptorNumber < 0 else { return }
        let opened = try FileDescriptor("opening the output log") { open(path, O_RDONLY | O_CLOEXEC) }
        descriptorNumber = opened.rawValue
        descriptor = consume opened
    }

    private func readChunk() throws(JobWorkerError) -> [UInt8] {
        let descriptor = descriptorNumber
        let offset = off_t(offset)
        return try [UInt8](unsafeUninitializedCapacity: JobOutput.maximumChunkSize) {
            buffer, count throws(JobWorkerError) in
            count = try systemCall("reading the output log") {
                pread(descriptor, buffer.baseAddress, buffer.count, offset)
            }
        }
    }

    private func checkOffsetWithinOutput() throws(JobWorkerError) {
        var info = stat()
        guard fstat(descriptorNumber, &info) == 0, offset > UInt64(info.st_size) else { return }
        throw JobWorkerError(
            .invalidArgument, "offset \(offset) is beyond the end of the output (\(info.st_size) bytes)")
    }

    private func release() {
        isFinished = true
        descriptor = nil
        descriptorNumber = -1
    }
}

/// How many output iterators exist (each holds a descriptor and a chunk buffer): a gauge for
/// operators, and how tests show that a reader that went away left nothing behind.
final class ReaderTally: Sendable {
    let count = Atomic<Int>(0)
}
