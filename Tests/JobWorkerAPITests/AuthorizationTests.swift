import GRPCCore
import GRPCInProcessTransport
import JobWorkerAPI
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Authorization matrix", .timeLimit(.minutes(2)))
struct AuthorizationTests {
    typealias Client = Jobworker_V1_JobWorker.Client<InProcessTransport.Client>

    /// Every RPC, as `caller`, against the job `id`: the status code each one returns (nil = OK).
    func codes(_ client: Client, as caller: Caller, job id: String) async -> [String: RPCError.Code?] {
        var result: [String: RPCError.Code?] = [:]
        result["GetJobStatus"] = await statusCode {
            _ = try await client.getJobStatus(.with { $0.id = id }, metadata: caller.metadata)
        }
        result["StreamJobOutput"] = await statusCode {
            _ = try await client.output(of: id, as: caller)
        }
        result["StopJob"] = await statusCode {
            _ = try await client.stopJob(.with { $0.id = id }, metadata: caller.metadata)
        }
        result["StartJob"] = await statusCode {
            _ = try await client.startHelper("exit", "0", as: caller)
        }
        result["ListJobs"] = await statusCode {
            _ = try await client.listJobs(.init(), metadata: caller.metadata)
        }
        result["WaitJob"] = await statusCode {
            _ = try await client.waitJob(.with { $0.id = id }, metadata: caller.metadata)
        }
        // The job has ended (the matrix waits for it): a permitted signal is FAILED_PRECONDITION.
        result["SignalJob"] = await statusCode {
            _ = try await client.signalJob(
                .with {
                    $0.id = id
                    $0.signal = SIGUSR1
                }, metadata: caller.metadata)
        }
        // A watch of every job the caller may see: OK if it shows the job, NOT_FOUND (as for a
        // lookup) if it shows other jobs but not that one. Decided without a timeout: once the
        // watch is in place (its first message came), the caller starts a job of its own, and
        // the job's start arrives after the whole snapshot.
        result["WatchJobs"] = await statusCode {
            try await client.watchJobs(.init(), metadata: caller.metadata) { response in
                var marker: String?
                for try await message in response.messages {
                    if message.status.id == id { return }
                    if message.status.id == marker { throw RPCError(code: .notFound, message: "not in the watch") }
                    if marker == nil { marker = try await client.startHelper("exit", "0", as: caller).id }
                }
            }
        }
        return result
    }

    @Test(
        "each role gets exactly its codes on its own job and on another user's",
        arguments: [
            // caller, whose job, expected codes (nil = OK)
            (Caller.admin, Caller.bob, [nil, nil, nil, nil, nil, nil, .failedPrecondition, nil]),
            (Caller.alice, Caller.alice, [nil, nil, nil, nil, nil, nil, .failedPrecondition, nil]),
            (Caller.alice, Caller.bob, [.notFound, .notFound, .notFound, nil, nil, .notFound, .notFound, .notFound]),
            (
                Caller.viewer, Caller.bob,
                [nil, nil, .permissionDenied, .permissionDenied, nil, nil, .permissionDenied, nil]
            ),
            (Caller.stranger, Caller.bob, [RPCError.Code?](repeating: .permissionDenied, count: 8)),
        ])
    func matrix(caller: Caller, owner: Caller, expected: [RPCError.Code?]) async throws {
        try await withAPI { client in
            // The job ends by itself, so streams end and every RPC returns.
            let job = try await client.startHelper("echo-args", "hello", as: owner)
            let actual = await codes(client, as: caller, job: job.id)
            let names = [
                "GetJobStatus", "StreamJobOutput", "StopJob", "StartJob", "ListJobs", "WaitJob", "SignalJob",
                "WatchJobs",
            ]
            for (name, code) in zip(names, expected) {
                #expect(actual[name] == code, "\(caller) calling \(name) on \(owner)'s job")
            }
        }
    }

    @Test("a caller without an identity is UNAUTHENTICATED for every RPC")
    func unauthenticated() async throws {
        try await withAPI { client in
            let anonymous = await statusCode { _ = try await client.listJobs(.init()) }
            #expect(anonymous == .unauthenticated)
            let start = await statusCode { _ = try await client.startJob(.with { $0.command = "/bin/true" }) }
            #expect(start == .unauthenticated)
        }
    }

    @Test("a user lists only its own jobs, and cannot tell another user's job from a missing one")
    func listAndExistence() async throws {
        try await withAPI { client in
            let mine = try await client.startHelper("exit", "0", as: .alice)
            let theirs = try await client.startHelper("exit", "0", as: .bob)
            let listed = try await client.listJobs(.init(), metadata: Caller.alice.metadata).jobs.map(\.id)
            #expect(listed == [mine.id])
            let all = try await client.listJobs(.init(), metadata: Caller.viewer.metadata).jobs.map(\.id)
            #expect(all == [theirs.id, mine.id], "newest first")

            let missing = "00000000-0000-4000-8000-000000000000"
            var messages: [String] = []
            for id in [theirs.id, missing] {
                do {
                    _ = try await client.getJobStatus(.with { $0.id = id }, metadata: Caller.alice.metadata)
                } catch let error as RPCError {
                    #expect(error.code == .notFound)
                    messages.append(error.message.replacingOccurrences(of: id, with: "ID"))
                }
            }
            #expect(messages.count == 2 && messages[0] == messages[1])
        }
    }
}
