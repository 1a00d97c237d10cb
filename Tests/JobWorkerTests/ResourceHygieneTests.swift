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
    try await withWorker { worker in
        // Warm up once so lazily opened runtime descriptors are counted in the baseline.
        _ = try await worker.waitUntilEnded(try await worker.startHelper("exit", "0").id)
        let before = try openDescriptorCount()
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
        #expect(worker.list().count == 201)
        #expect(worker.list().allSatisfy { $0.state == .exited })
        #expect(zombieChildren().isEmpty)
        #expect(try openDescriptorCount() <= before)
    }
}
