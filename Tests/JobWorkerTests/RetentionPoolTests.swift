import Foundation
import JobWorker
import Testing

/// Retention counts the disk space output takes, per owner: no owner's output — however large it
/// claims to be — evicts another owner's finished jobs.
@Suite("Retention pools", .timeLimit(.minutes(1)))
struct RetentionPoolTests {
    @Test("a sparse 11 GiB log evicts nothing, and one owner's output evicts only its own jobs")
    func perOwnerPools() async throws {
        try await withWorker {
            $0.policy.retention = RetentionPolicy(maximumAge: nil, maximumOutputBytes: 1 << 20)
            // Without an init the job's stdout is the log itself, which it can truncate (with
            // one, stdout is a pipe: see below).
            $0.isolation = .none
        } _: { worker in
            func run(_ owner: String, _ arguments: [String]) async throws -> JobID {
                let job = try await worker.start(
                    command: arguments[0], arguments: Array(arguments.dropFirst()), owner: owner)
                _ = try await worker.waitUntilEnded(job.id)
                return job.id
            }
            let bobs = [
                try await run("bob", [helperPath, "pattern", "100000"]),
                try await run("bob", [helperPath, "pattern", "100000"]),
            ]
            // The job's stdout is the log: a sparse 11 GiB file, no disk used.
            let sparse = try await run("mallory", ["/usr/bin/perl", "-e", "truncate(STDOUT, 11 * 1024**3) or die $!"])
            #expect(try worker.status(of: sparse).outputBytes == 11 << 30)
            // 3 × 600 KB of real output over a 1 MiB pool: alice's oldest two go, bob's stay.
            var alices: [JobID] = []
            for _ in 0..<3 { alices.append(try await run("alice", [helperPath, "pattern", "600000"])) }
            // Retention runs once an end is on record, just after the waiters learn of it; a
            // shutdown returns once every end is on record (and statuses stay readable).
            await worker.shutdown(gracePeriod: .zero)
            let kept = Set(worker.list().map(\.id))
            #expect(kept.isSuperset(of: bobs + [sparse, alices[2]]))
            #expect(kept.isDisjoint(with: alices.prefix(2)))
        }
    }

    @Test(
        "with an init, a job's stdout is a pipe: it cannot truncate its log",
        .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)))
    func logOutOfReach() async throws {
        try await withWorker { worker in
            let job = try await worker.start(
                command: "/usr/bin/perl", arguments: ["-e", "truncate(STDOUT, 11 * 1024**3) or die $!"],
                owner: "mallory")
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.exitCode != 0)
            let text = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            #expect(text.hasPrefix("Invalid argument"), "\(text)")
            #expect(ended.outputBytes == UInt64(text.utf8.count))
        }
    }
}
