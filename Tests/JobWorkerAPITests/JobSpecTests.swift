import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import JobWorkerTestPrograms
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// StartJob's environment and working directory, through the API.
@Suite("Job spec: environment and working directory", .timeLimit(.minutes(2)))
struct JobSpecTests {
    /// The job's whole output, as text.
    func text(
        of status: Jobworker_V1_JobStatus, _ client: Jobworker_V1_JobWorker.Client<some ClientTransport>
    ) async throws -> String {
        let messages = try await client.streamJobOutput(.with { $0.id = status.id }, metadata: Caller.alice.metadata) {
            response in
            var data = Data()
            for try await message in response.messages { data += message.data }
            return data
        }
        return String(decoding: messages, as: UTF8.self)
    }

    @Test(
        "env reaches the job over the clean environment; PATH stays unless set; status names, never shows, the values")
    func environment() async throws {
        try await withAPI { client in
            let status = try await client.startJob(
                .with {
                    $0.command = helperPath
                    $0.args = ["print-environment"]
                    $0.env = ["GREETING": "hello world", "EMPTY": "", "SECRET_TOKEN": "s3cr3t=x"]
                }, metadata: Caller.alice.metadata
            ).status
            let lines = Set(try await text(of: status, client).split(separator: "\n").map(String.init))
            #expect(lines.isSuperset(of: ["GREETING=hello world", "EMPTY=", "SECRET_TOKEN=s3cr3t=x"]), "\(lines)")
            let defaultPath = try #require(WorkerConfiguration(stateDirectory: "/").jobEnvironment["PATH"])
            #expect(lines.contains("PATH=" + defaultPath))
            #expect(status.envNames == ["EMPTY", "GREETING", "SECRET_TOKEN"])
            let listed = try await client.listJobs(.init(), metadata: Caller.alice.metadata).jobs
            for shown in [status, try #require(listed.first { $0.id == status.id })] {
                #expect(!(try shown.jsonString()).contains("s3cr3t"))
            }

            // A PATH of the request's own replaces the server's, for the job and for finding a bare command.
            let own = try await client.startJob(
                .with {
                    $0.command = "env"
                    $0.env = ["PATH": "/bin"]
                }, metadata: Caller.alice.metadata
            ).status
            #expect(try await text(of: own, client).split(separator: "\n").contains("PATH=/bin"))
        }
    }

    @Test("a bad name, a NUL in a value, too many variables or too many bytes: INVALID_ARGUMENT naming the entry")
    func badEnvironment() async throws {
        let cases: [([String: String], String)] = [
            (["1ABC": "x"], "\"1ABC\""), (["A-B": "x"], "\"A-B\""), (["": "x"], "\"\""), (["LINE\nBREAK": "x"], "\\n"),
            (["NUL": "a\u{0}b"], "NUL"),
            (Dictionary(uniqueKeysWithValues: (0..<257).map { ("V\($0)", "x") }), "257"),
            (["BIG": String(repeating: "x", count: 129 * 1024)], "131072"),
        ]
        try await withAPI { client in
            for (environment, named) in cases {
                do {
                    _ = try await client.startJob(
                        .with {
                            $0.command = "/bin/true"
                            $0.env = environment
                        }, metadata: Caller.alice.metadata)
                    Issue.record("\(named): accepted")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument, "\(error)")
                    #expect(error.message.contains(named), "\(named): \(error.message)")
                }
            }
        }
    }

    @Test("working_dir is the job's cwd; a missing, relative or closed one is INVALID_ARGUMENT naming it")
    func workingDirectory() async throws {
        let closed = try TestPrograms.makeJobVisibleDirectory()
        defer { rmdir(closed) }
        chmod(closed, 0o700)  // root's: no job user may enter it
        try await withAPI { client in
            let status = try await client.startJob(
                .with {
                    $0.command = helperPath
                    $0.args = ["print-cwd"]
                    $0.workingDir = "/usr/share"
                }, metadata: Caller.alice.metadata
            ).status
            #expect(try await text(of: status, client) == "/usr/share\n")
            #expect(status.workingDir == "/usr/share")
            let fallback = try await client.startHelper("print-cwd", as: .alice)
            #expect(try await text(of: fallback, client) == "/\n")

            var refused = ["/no/such/directory", "relative/dir", helperPath]
            if geteuid() == 0 { refused.append(closed) }  // a job as the server's own user could enter it
            for directory in refused {
                do {
                    _ = try await client.startJob(
                        .with {
                            $0.command = "/bin/true"
                            $0.workingDir = directory
                        }, metadata: Caller.alice.metadata)
                    Issue.record("\(directory): accepted")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument, "\(directory): \(error)")
                    #expect(error.message.contains(directory), "\(error.message)")
                }
            }
        }
    }

    @Test("stdin bytes (NUL, invalid UTF-8) come back byte for byte through cat; without them stdin is /dev/null")
    func standardInput() async throws {
        let bytes: [UInt8] = [0, 1, 2, 0xff, 0xfe, 0x80] + Array("line\n".utf8) + (0..<70_000).map { UInt8($0 % 251) }
        try await withAPI { client in
            let status = try await client.startJob(
                .with {
                    $0.command = "/bin/cat"
                    $0.stdin = Data(bytes)
                }, metadata: Caller.alice.metadata
            ).status
            #expect(status.hasStdin_p)
            let output = try await client.output(of: status.id, as: .alice).reduce(Data()) { $0 + $1.data }
            #expect([UInt8](output) == bytes)

            let none = try await client.startJob(.with { $0.command = "/bin/cat" }, metadata: Caller.alice.metadata)
                .status
            #expect(!none.hasStdin_p)
            #expect(try await client.output(of: none.id, as: .alice).isEmpty)

            let code = await statusCode {
                _ = try await client.startJob(
                    .with {
                        $0.command = "/bin/cat"
                        $0.stdin = Data(count: (1 << 20) + 1)
                    }, metadata: Caller.alice.metadata)
            }
            #expect(code == .invalidArgument)
        }
    }

    @Test(
        "stop_signal is what StopJob sends first; a signal a job cannot catch or the init does not forward is refused")
    func stopSignal() async throws {
        try await withAPI { client in
            let job = try await client.startJob(
                .with {
                    $0.command = helperPath
                    $0.args = ["name-signal"]
                    $0.stopSignal = SIGINT
                }, metadata: Caller.alice.metadata
            ).status
            #expect(job.stopSignal == SIGINT)
            try await client.waitForOutput(of: job.id, containing: "ready", as: .alice)
            let stopped = try await client.stopJob(.with { $0.id = job.id }, metadata: Caller.alice.metadata).status
            #expect(stopped.state == .stopped && stopped.exitCode == 0)
            let output = try await client.output(of: job.id, as: .alice).reduce(Data()) { $0 + $1.data }
            #expect(String(decoding: output, as: UTF8.self) == "ready\ngot signal \(SIGINT)\n")
            let plain = try await client.startJob(.with { $0.command = "/bin/true" }, metadata: Caller.alice.metadata)
            #expect(plain.status.stopSignal == SIGTERM)
            for refused in [SIGKILL, SIGSTOP, 99, -1] as [Int32] {
                let code = await statusCode {
                    _ = try await client.startJob(
                        .with {
                            $0.command = "/bin/true"
                            $0.stopSignal = refused
                        }, metadata: Caller.alice.metadata)
                }
                #expect(code == .invalidArgument, "\(refused)")
            }
        }
    }

    @Test("timeout_ms stops a sleeping job, which ends TIMED_OUT with its deadline; over --max-timeout is refused")
    func timeout() async throws {
        try await withAPI(
            configure: { $0.policy.maximumTimeout = .seconds(60) },
            { client in
                let job = try await client.startJob(
                    .with {
                        $0.command = helperPath
                        $0.args = ["sleep"]
                        $0.timeoutMs = 300
                    }, metadata: Caller.alice.metadata
                ).status
                #expect(job.timeoutMs == 300 && job.hasDeadline)
                let final = try await client.waitJob(.with { $0.id = job.id }, metadata: Caller.alice.metadata).status
                #expect(final.state == .timedOut && final.signal == SIGTERM, "\(final)")
                #expect(final.deadline == job.deadline)
                let code = await statusCode {
                    _ = try await client.startJob(
                        .with {
                            $0.command = "/bin/true"
                            $0.timeoutMs = 61_000
                        }, metadata: Caller.alice.metadata)
                }
                #expect(code == .invalidArgument)
            })
    }
}
