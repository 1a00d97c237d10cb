import Foundation
import GRPCCore
import GRPCInProcessTransport
import JobWorker
import JobWorkerAPI
import Testing

/// WatchJobs: the current statuses, then every start and end, of the jobs the caller may see.
@Suite("Watching jobs", .timeLimit(.minutes(2)))
struct WatchJobsTests {
    typealias Client = Jobworker_V1_JobWorker.Client<InProcessTransport.Client>

    /// One watcher's view: every status it received, in order.
    final class Watcher: Sendable {
        let caller: Caller
        let received = AsyncStream<Jobworker_V1_JobStatus>.makeStream()

        init(_ caller: Caller) { self.caller = caller }
    }

    @Test("every start and end of 50 jobs started at once, in order per job, and only those the caller may see")
    func fiftyJobs() async throws {
        let liftQuotas: (inout WorkerConfiguration) -> Void = { $0.liftOwnerQuotas() }
        try await withAPI(configure: liftQuotas) { client in
            // A running job per user, so that each watch's first message shows it is in place.
            let aliceSleeper = try await client.startHelper("sleep", as: .alice)
            let bobSleeper = try await client.startHelper("sleep", as: .bob)
            let watchers = [Caller.alice, .bob, .viewer].map(Watcher.init)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for watcher in watchers {
                    group.addTask {
                        try await client.watchJobs(.init(), metadata: watcher.caller.metadata) { response in
                            for try await message in response.messages {
                                watcher.received.continuation.yield(message.status)
                            }
                        }
                    }
                }
                var iterators = watchers.map { $0.received.stream.makeAsyncIterator() }
                var seen = [[Jobworker_V1_JobStatus]](repeating: [], count: watchers.count)
                for index in watchers.indices {
                    // The viewer's snapshot holds both sleepers, newest first.
                    let snapshotSize = watchers[index].caller == .viewer ? 2 : 1
                    for _ in 0..<snapshotSize { seen[index].append(try #require(await iterators[index].next())) }
                }
                #expect(seen[0].map(\.id) == [aliceSleeper.id])
                #expect(seen[1].map(\.id) == [bobSleeper.id])
                #expect(seen[2].map(\.id) == [bobSleeper.id, aliceSleeper.id])

                let started = try await withThrowingTaskGroup(of: Jobworker_V1_JobStatus.self) { starts in
                    for index in 0..<50 {
                        starts.addTask {
                            try await client.startHelper(
                                "exit", "\(index % 3)", as: index.isMultiple(of: 2) ? .alice : .bob)
                        }
                    }
                    return try await starts.reduce(into: []) { $0.append($1) }
                }
                for job in [aliceSleeper, bobSleeper] {
                    _ = try await client.stopJob(.with { $0.id = job.id }, metadata: Caller.admin.metadata)
                }
                let all = started + [aliceSleeper, bobSleeper]
                for (index, watcher) in watchers.enumerated() {
                    let visible = Set(
                        all.filter { watcher.caller == .viewer || $0.owner == watcher.caller.name }.map(\.id))
                    // Every visible job ends once; the sleepers' starts were in the snapshot.
                    var ended: Set<String> = []
                    while ended != visible {
                        let status = try #require(await iterators[index].next())
                        seen[index].append(status)
                        if status.state != .running { ended.insert(status.id) }
                    }
                    let byJob = Dictionary(grouping: seen[index], by: \.id)
                    #expect(Set(byJob.keys) == visible, "\(watcher.caller.name) sees exactly the jobs it may")
                    for (id, statuses) in byJob {
                        #expect(statuses.count == 2, "\(watcher.caller.name): \(id) start and end")
                        #expect(statuses.first?.state == .running && statuses.last?.hasEndedAt == true)
                    }
                }
                group.cancelAll()
            }
        }
    }

    @Test("a user's watch leaves out another owner's newer job; a stranger is PERMISSION_DENIED")
    func otherOwners() async throws {
        try await withAPI { client in
            let mine = try await client.startHelper("exit", "0", as: .alice)
            _ = try await client.startHelper("exit", "0", as: .bob)
            // Newest first: were bob's job visible to alice, it would come first.
            let first = try await client.watchJobs(.init(), metadata: Caller.alice.metadata) { response in
                var messages = response.messages.makeAsyncIterator()
                return try await messages.next()?.status.id
            }
            #expect(first == mine.id)
            // Asking for bob's jobs outright: none, and the watch stays open until the client's
            // deadline ends it; the server goes on.
            var short = CallOptions.defaults
            short.timeout = .milliseconds(300)
            let bounded = await statusCode {
                try await client.watchJobs(
                    .with { $0.filter.owner = "bob" }, metadata: Caller.alice.metadata, options: short
                ) { response in
                    for try await message in response.messages {
                        Issue.record("alice was shown \(message.status.owner)'s job")
                    }
                }
            }
            #expect(bounded == .deadlineExceeded)
            #expect(try await client.listJobs(.init(), metadata: Caller.alice.metadata).jobs.map(\.id) == [mine.id])
            let denied = await statusCode {
                try await client.watchJobs(.init(), metadata: Caller.stranger.metadata) { response in
                    for try await _ in response.messages {}
                }
            }
            #expect(denied == .permissionDenied)
        }
    }
}
