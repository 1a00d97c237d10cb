import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Testing

@Suite("JobWorker service over gRPC", .timeLimit(.minutes(2)))
struct ServiceTests {
    @Test("start, status, stream, list and stop carry the library's answers")
    func happyPath() async throws {
        try await withAPI { client in
            let started = try await client.startHelper("trap-term", as: .alice)
            #expect(started.state == .running)
            #expect(started.owner == "alice")
            #expect(started.args == ["trap-term"])
            #expect(started.hasStartedAt && !started.hasEndedAt)
            try await client.waitForOutput(of: started.id, containing: "ready", as: .alice)

            let stopped = try await client.stopJob(
                .with {
                    $0.id = started.id
                    $0.gracePeriodMs = 30_000
                }, metadata: Caller.alice.metadata
            ).status
            #expect(stopped.state == .stopped)
            #expect(stopped.exitCode == 0)
            #expect(stopped.hasEndedAt)

            let status = try await client.getJobStatus(.with { $0.id = started.id }, metadata: Caller.alice.metadata)
            #expect(status.status == stopped)
            let output = try await client.output(of: started.id, as: .alice)
            #expect(String(decoding: output.flatMap(\.data), as: UTF8.self) == "ready\ngot SIGTERM\n")
            #expect(output.first?.offset == 0)
        }
    }

    @Test("exit codes and signals are reported", arguments: [("exit", "3"), ("signal", "9")])
    func exitStatus(mode: String, value: String) async throws {
        try await withAPI { client in
            let job = try await client.startHelper(mode, value, as: .alice)
            _ = try await client.output(of: job.id, as: .alice)  // ends once the job has ended
            let status = try await client.getJobStatus(.with { $0.id = job.id }, metadata: Caller.alice.metadata).status
            if mode == "exit" {
                #expect(status.state == .exited && status.exitCode == 3 && status.signal == 0)
            } else {
                #expect(status.state == .killed && status.signal == 9)
            }
        }
    }

    @Test("output is bytes: all 256 values arrive unchanged, and a resumed stream gets exactly the rest")
    func binaryOutputAndResume() async throws {
        try await withAPI { client in
            let job = try await client.startHelper("all-bytes", as: .alice)
            let whole = try await client.output(of: job.id, as: .alice)
            #expect(whole.flatMap(\.data) == (0...255).map { UInt8($0) })
            let rest = try await client.output(of: job.id, from: 100, as: .alice)
            #expect(rest.first?.offset == 100)
            #expect(rest.flatMap(\.data) == (100...255).map { UInt8($0) })
        }
    }

    @Test("malformed requests are INVALID_ARGUMENT with a message that says why")
    func invalidArguments() async throws {
        try await withAPI { client in
            func code(_ request: Jobworker_V1_StartJobRequest) async -> RPCError.Code? {
                await statusCode { _ = try await client.startJob(request, metadata: Caller.alice.metadata) }
            }
            #expect(await code(.with { $0.command = "" }) == .invalidArgument)
            #expect(await code(.with { $0.command = "/bin/echo\u{0}x" }) == .invalidArgument)
            #expect(await code(.with { $0.command = "/nonexistent/program" }) == .invalidArgument)
            #expect(await code(.with { $0.command = "no-such-command-jobworker" }) == .invalidArgument)
            #expect(
                await code(
                    .with {
                        $0.command = "/bin/true"
                        $0.args = [String](repeating: "x", count: 10_000)
                    }) == .invalidArgument)
            let malformed = await statusCode {
                _ = try await client.getJobStatus(.with { $0.id = "../../etc" }, metadata: Caller.alice.metadata)
            }
            #expect(malformed == .invalidArgument)
            let unknown = await statusCode {
                _ = try await client.getJobStatus(
                    .with { $0.id = "00000000-0000-4000-8000-000000000000" }, metadata: Caller.alice.metadata)
            }
            #expect(unknown == .notFound)
        }
    }

    @Test(
        "a limit above the server's ceiling is INVALID_ARGUMENT naming the limit and the ceiling",
        .enabled(if: canUseCgroups, "limits need cgroups: requires root (runs always under CI=true)"))
    func ceiling() async throws {
        try await withAPI {
            $0.policy.resourcePolicy.ceilings.memoryBytes = 8 << 30
        } _: { client in
            do {
                _ = try await client.startJob(
                    .with {
                        $0.command = "/bin/true"
                        $0.limits.memoryBytes = 64 << 30
                    }, metadata: Caller.alice.metadata)
                Issue.record("started")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
                #expect(error.message == "memory limit 64Gi exceeds the server ceiling 8Gi")
            }
        }
    }

    @Test("the running-job limit is RESOURCE_EXHAUSTED")
    func runningJobLimit() async throws {
        try await withAPI {
            $0.policy.maximumRunningJobs = 2
        } _: { client in
            _ = try await client.startHelper("sleep", as: .alice)
            _ = try await client.startHelper("sleep", as: .alice)
            let third = await statusCode { _ = try await client.startHelper("sleep", as: .alice) }
            #expect(third == .resourceExhausted)
        }
    }

    @Test("200 concurrent StartJob calls are all recorded, as a restarted worker lists them")
    func concurrentStartsRecorded() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("records-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let started = try await withAPI {
            $0.stateDirectory = directory
            $0.cgroupParentName = "jobworker-api-test-records-\(JobID().shortDescription)"
            $0.liftOwnerQuotas()  // one owner's 200 starts at once
        } _: { client in
            try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<200 {
                    group.addTask { try await client.startHelper("exit", "\(index % 100)", as: .alice).id }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
        }
        #expect(started.count == 200)
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.resourceControl = .disabled
        configuration.isolation = .none
        let restarted = try await Worker(configuration: configuration)
        let recorded = restarted.list()
        await restarted.shutdown(gracePeriod: .zero)
        #expect(Set(recorded.map(\.id.description)) == started)
        #expect(recorded.allSatisfy { $0.owner == "alice" && $0.state != .running && $0.state != .lost })
    }
}
