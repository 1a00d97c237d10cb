import Foundation
import JobWorker
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The resource limits every job starts with: no core dumps, a bounded number of open files,
/// and no way for the job to raise either.
@Suite("Process limits", .timeLimit(.minutes(1)))
struct ProcessLimitsTests {
    static let probe = "ulimit -c; ulimit -Hc; ulimit -n; ulimit -Hn; (ulimit -c unlimited) 2>/dev/null && echo raised"

    @Test("core dumps are off, open files bounded, and a job cannot raise them", arguments: [false, true])
    func limits(isolated: Bool) async throws {
        try await withWorker { configuration in
            if !isolated { configuration.isolation = .none }
        } _: { worker in
            let job = try await worker.start(command: "/bin/sh", arguments: ["-c", Self.probe], owner: "tester")
            #expect(try await worker.waitUntilEnded(job.id).state == .exited)
            let output = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            var own = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &own)
            let hard = min(65536, own.rlim_max)
            let expected = ["0", "0", "\(min(1024, hard))", "\(hard)"]
            #expect(output.split(separator: "\n").map(String.init) == expected, "\(output)")
        }
    }
}
