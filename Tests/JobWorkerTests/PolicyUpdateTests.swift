import Foundation
import JobWorker
import Testing

/// `Worker.update(_:)`: the limits, quotas, time limits and retention of a running worker,
/// changed without a restart (a server's reload).
@Suite(
    "Changing a running worker's policy",
    .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)), .timeLimit(.minutes(1)))
struct PolicyUpdateTests {
    @Test(
        "new starts get the new quota, default limits and time limit; running jobs keep theirs; a policy that does not hold together changes nothing"
    )
    func newStartsGetTheNewPolicy() async throws {
        try await withWorker {
            $0.policy.maximumRunningJobs = 1
        } _: { worker in
            let initialMemory = worker.policy.resourcePolicy.defaults.memoryBytes
            let first = try await worker.startHelper("sleep")
            let refused = await #expect(throws: JobWorkerError.self) { try await worker.startHelper("sleep") }
            #expect(refused?.code == .resourceExhausted)

            var policy = worker.policy
            policy.maximumRunningJobs = 2
            policy.resourcePolicy.defaults.memoryBytes = 512 << 20
            policy.defaultTimeout = .seconds(3600)
            try worker.update(policy)
            #expect(worker.policy == policy)
            let second = try await worker.startHelper("sleep")
            #expect(second.limits.memoryBytes == 512 << 20)
            #expect(second.timeout == .seconds(3600))
            let kept = try worker.status(of: first.id)
            #expect(kept.limits.memoryBytes == initialMemory && kept.timeout == nil)

            var contradictory = policy
            contradictory.resourcePolicy.ceilings.memoryBytes = 256 << 20  // below the default
            #expect(throws: JobWorkerError.self) { try worker.update(contradictory) }
            #expect(worker.policy == policy)
        }
    }

    @Test("lower retention bounds apply at once: the owner's oldest finished jobs go")
    func retentionAtOnce() async throws {
        try await withWorker {
            $0.policy.retention = RetentionPolicy(maximumAge: nil, maximumOutputBytes: nil)
        } _: { worker in
            var jobs: [JobID] = []
            for _ in 0..<3 {
                let job = try await worker.startHelper("pattern", "100000", owner: "alice")
                _ = try await worker.waitUntilEnded(job.id)
                try await worker.waitUntilRecorded(job.id)
                jobs.append(job.id)
            }
            var policy = worker.policy
            // Room for one log of 100 kB (in allocated blocks), not for two.
            policy.retention.maximumOutputBytes = 150_000
            try worker.update(policy)
            #expect(Set(worker.list().map(\.id)) == [jobs[2]])
        }
    }
}
