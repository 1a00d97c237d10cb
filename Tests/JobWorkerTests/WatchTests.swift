import Foundation
import Testing

@testable import JobWorker

@Suite("Watching jobs in the library", .timeLimit(.minutes(1)))
struct WatchTests {
    @Test("a watcher that falls more than the backlog behind is ended with resourceExhausted, after its backlog")
    func slowWatcherIsDropped() async throws {
        let smallBacklog: (inout WorkerConfiguration) -> Void = { $0.watchBacklog = 4 }
        try await withWorker(smallBacklog) { worker in
            let watch = worker.watch(matching: JobFilter())
            // Five jobs start and end while nobody reads: ten changes, six past the backlog.
            for _ in 0..<5 {
                let job = try await worker.start(command: "/bin/true", arguments: [], owner: "tester")
                try await worker.waitUntilRecorded(job.id)
            }
            var received: [JobStatus] = []
            await #expect {
                for try await status in watch { received.append(status) }
            } throws: { error in
                (error as? JobWorkerError)?.code == .resourceExhausted
            }
            #expect(received.count == 4, "the backlog, then the end")
            // The worker went on: a new watch starts from the current statuses.
            let fresh = worker.watch(matching: JobFilter())
            #expect(fresh.current.count == 5 && fresh.current.allSatisfy { $0.state == .exited })
        }
    }

    @Test("a shutdown ends the watchers after the ends of the jobs it stopped; the filter applies to changes")
    func shutdownEndsWatchers() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let worker = try await Worker(configuration: testConfiguration(directory))
        let watch = worker.watch(matching: JobFilter(labels: ["watched": "yes"]))
        #expect(watch.current.isEmpty)
        let watched = try await worker.start(
            JobSpec(command: helperPath, arguments: ["sleep"], labels: ["watched": "yes"]), owner: "tester")
        _ = try await worker.start(JobSpec(command: helperPath, arguments: ["sleep"]), owner: "tester")
        await worker.shutdown(gracePeriod: .zero)
        var received: [JobStatus] = []
        await #expect {
            for try await status in watch { received.append(status) }
        } throws: { error in
            (error as? JobWorkerError)?.code == .shuttingDown
        }
        #expect(received.map(\.id) == [watched.id, watched.id])
        #expect(received.map(\.state) == [.running, .stopped])
        // A watch begun after the shutdown ends at once.
        let late = worker.watch(matching: JobFilter())
        await #expect(throws: JobWorkerError.self) {
            for try await _ in late {}
        }
    }
}
