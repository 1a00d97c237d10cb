import Foundation
import Testing

@testable import JobWorker

/// One owner cannot take the whole server: a bound on its running jobs and on its start rate.
@Suite("Per-owner quotas", .timeLimit(.minutes(1)))
struct OwnerQuotaTests {
    @Test("the owner's limit refuses its next start, while another owner's goes through")
    func runningJobsPerOwner() async throws {
        try await withWorker {
            $0.policy.maximumRunningJobsPerOwner = 2
        } _: { worker in
            let first = try await worker.startHelper("sleep", owner: "alice")
            let second = try await worker.startHelper("sleep", owner: "alice")
            await #expect(
                throws: JobWorkerError(
                    .resourceExhausted,
                    "alice has 2 jobs running, the limit per owner: try again when one has ended")
            ) {
                try await worker.startHelper("sleep", owner: "alice")
            }
            let bobs = try await worker.startHelper("exit", "0", owner: "bob")
            #expect(try await worker.waitUntilEnded(bobs.id).state == .exited)
            // A slot of alice's comes back when one of her jobs has ended.
            _ = try await worker.stop(first.id, gracePeriod: .zero)
            let third = try await worker.startHelper("exit", "0", owner: "alice")
            #expect(try await worker.waitUntilEnded(third.id).state == .exited)
            _ = try await worker.stop(second.id, gracePeriod: .zero)
        }
    }

    @Test("a failed start gives the owner's slot back")
    func failedStartFreesTheSlot() async throws {
        try await withWorker {
            $0.policy.maximumRunningJobsPerOwner = 1
        } _: { worker in
            for _ in 0..<3 {
                await #expect(throws: JobWorkerError.self) {
                    try await worker.start(command: "/nonexistent", owner: "alice")
                }
            }
            let job = try await worker.startHelper("exit", "0", owner: "alice")
            #expect(try await worker.waitUntilEnded(job.id).state == .exited)
        }
    }

    @Test("the start rate: a burst, then a start per 1/rate seconds, per owner")
    func startRate() throws {
        let rate = StartRate(perSecond: 10, burst: 3)
        var policy = WorkerPolicy()
        (policy.maximumRunningJobs, policy.startRatePerOwner) = (100, rate)
        let table = JobTable()
        let start = ContinuousClock.now
        for _ in 0..<3 { try table.reserveStart(for: "alice", policy: policy, now: start) }
        #expect(throws: JobWorkerError.self) { try table.reserveStart(for: "alice", policy: policy, now: start) }
        do {
            try table.reserveStart(for: "alice", policy: policy, now: start + .milliseconds(50))
            Issue.record("a start half a token after the burst was admitted")
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.message.contains("alice started more than 3 jobs at 10 a second"), "\(error.message)")
            #expect(error.message.hasSuffix("try again in 0.05 s"), "\(error.message)")
        }
        // Another owner has a bucket of its own.
        try table.reserveStart(for: "bob", policy: policy, now: start)
        // One token back after 1/rate.
        try table.reserveStart(for: "alice", policy: policy, now: start + .milliseconds(101))
        #expect(throws: JobWorkerError.self) {
            try table.reserveStart(for: "alice", policy: policy, now: start + .milliseconds(102))
        }
        // A full bucket again after burst/rate, and forgotten.
        try table.reserveStart(for: "carol", policy: policy, now: start + .seconds(10))
        #expect(table.contents.withLock { $0.startTokens.keys.sorted() } == ["carol"])
    }
}
