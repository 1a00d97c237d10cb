import Foundation
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// The output cap: a job that writes past it keeps running, its log keeps exactly the first
/// bytes, and the status counts what was dropped.
@Suite(
    "Output cap", .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)),
    .timeLimit(.minutes(1)))
struct OutputCapTests {
    /// Byte i of the helper's pattern.
    static func pattern(_ range: Range<Int>) -> [UInt8] { range.map { UInt8($0 % 251) } }

    @Test("3 × the cap written: the job runs to its end, the log is exactly the cap, the rest is counted")
    func capped() async throws {
        let cap = 1 << 20
        try await withWorker {
            $0.policy.maximumOutputBytes = UInt64(cap)
        } _: { worker in
            let job = try await worker.startHelper("pattern", "\(3 * cap)")
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.exitCode == 0)  // never killed or refused a write
            #expect(ended.outputBytes == UInt64(cap))
            #expect(ended.outputDroppedBytes == UInt64(2 * cap))
            #expect(ended.outputTruncated)
            var info = stat()
            #expect(stat(worker.configuration.stateDirectory + "/output/\(job.id).log", &info) == 0)
            #expect(info.st_size == cap)
            // Readers from the start and from the middle get the kept bytes, in place.
            #expect(try await worker.collectOutput(of: job.id) == Self.pattern(0..<cap))
            let middle = cap / 2 - 1
            #expect(try await worker.collectOutput(of: job.id, from: UInt64(middle)) == Self.pattern(middle..<cap))
            try await worker.waitUntilRecorded(job.id)
            #expect(try worker.status(of: job.id).outputDroppedBytes == UInt64(2 * cap))
        }
    }

    @Test("under the cap nothing is dropped, and a live reader sees every byte")
    func underCap() async throws {
        try await withWorker {
            $0.policy.maximumOutputBytes = 1 << 20
        } _: { worker in
            let job = try await worker.startHelper("pattern", "\(1 << 19)")
            let streamed = try await worker.collectOutput(of: job.id)
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(streamed == Self.pattern(0..<(1 << 19)))
            #expect(ended.outputDroppedBytes == 0 && !ended.outputTruncated)
        }
    }

    @Test("the default cap is 1 GiB")
    func defaultCap() {
        #expect(WorkerConfiguration(stateDirectory: "/x").policy.maximumOutputBytes == 1 << 30)
    }
}
