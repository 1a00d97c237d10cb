import Foundation
import JobWorker
import Testing

/// Process-wide checks (descriptor counts, zombies) run as exit tests, in a process of their own,
/// so that other tests running in parallel do not disturb the counts.
@Suite("Resource hygiene", .timeLimit(.minutes(2)))
struct ResourceHygieneTests {
    @Test("after 200 jobs and 50 failed starts: no zombies, no growth in open descriptors")
    func noLeaks() async throws {
        await #expect(processExitsWith: .success) {
            try await runManyJobsWithoutLeaks()
        }
    }
}

private func runManyJobsWithoutLeaks() async throws {
    // A first worker, started and shut down, opens whatever the runtime opens lazily.
    try await withWorker { worker in
        _ = try await worker.waitUntilEnded(try await worker.startHelper("exit", "0").id)
    }
    // Compared after shutdown: the worker keeps a pool of inits whose size varies while it runs,
    // but once it is shut down everything it opened must be closed, per job or not.
    let before = try openDescriptorCount(excludingTimers: true)
    try await withWorker {
        $0.liftOwnerQuotas()
    } _: { worker in
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let job = try await worker.startHelper("echo-args", "\(index)")
                    _ = try await worker.collectOutput(of: job.id)
                    _ = try await worker.waitUntilEnded(job.id)
                }
            }
            for _ in 0..<50 {
                group.addTask {
                    await #expect(throws: JobWorkerError.self) {
                        try await worker.start(command: "/nonexistent", owner: "tester")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(worker.list().count == 200)
        #expect(worker.list().allSatisfy { $0.state == .exited })
        #expect(zombieChildren().isEmpty)
    }
    #expect(zombieChildren().isEmpty)
    #expect(try openDescriptorCount(excludingTimers: true) == before)
}
