import Foundation
import GRPCCore
import GRPCInProcessTransport
import JobWorker
import JobWorkerAPI
import JobWorkerTestPrograms
import Testing

/// Names, labels, and ListJobs filtered by state, label, owner and name.
@Suite("Job names, labels and filters", .timeLimit(.minutes(2)))
struct JobFilterTests {
    @Test("name and labels are the job's; bad ones are INVALID_ARGUMENT naming them")
    func namesAndLabels() async throws {
        try await withAPI { client in
            let status = try await client.startJob(
                .with {
                    $0.command = "/bin/true"
                    $0.name = "nightly report"
                    $0.labels = ["team": "data", "example.com/tier": "batch", "empty": ""]
                }, metadata: Caller.alice.metadata
            ).status
            #expect(status.name == "nightly report")
            #expect(status.labels == ["team": "data", "example.com/tier": "batch", "empty": ""])
            let bad: [(Jobworker_V1_StartJobRequest, String)] = [
                (.with { $0.name = String(repeating: "n", count: 129) }, "129"),
                (.with { $0.name = "two\nlines" }, "control"),
                (.with { $0.labels = ["-team": "x"] }, "-team"),
                (.with { $0.labels = ["team": "no spaces"] }, "no spaces"),
                (.with { $0.labels = ["Example.COM/tier": "x"] }, "Example.COM/tier"),
                (.with { $0.labels = [String(repeating: "k", count: 64): "x"] }, "kkkk"),
                (.with { $0.labels = Dictionary(uniqueKeysWithValues: (0..<65).map { ("k\($0)", "v") }) }, "65"),
            ]
            for (request, named) in bad {
                var request = request
                request.command = "/bin/true"
                let code = await statusCode { _ = try await client.startJob(request, metadata: Caller.alice.metadata) }
                #expect(code == .invalidArgument, "\(named)")
                do {
                    _ = try await client.startJob(request, metadata: Caller.alice.metadata)
                } catch let error as RPCError {
                    #expect(error.message.contains(named), "\(named): \(error.message)")
                }
            }
        }
    }

    @Test("ListJobs filters by state, every label, owner and name; a user's owner filter never widens its view")
    func filters() async throws {
        try await withAPI { client in
            func start(_ caller: Caller, name: String, labels: [String: String], sleeping: Bool) async throws -> String
            {
                try await client.startJob(
                    .with {
                        $0.command = helperPath
                        $0.args = [sleeping ? "sleep" : "echo-args"]
                        $0.name = name
                        $0.labels = labels
                    }, metadata: caller.metadata
                ).status.id
            }
            let aliceRunning = try await start(
                .alice, name: "a", labels: ["app": "web", "env": "prod"], sleeping: true)
            let aliceDone = try await start(.alice, name: "b", labels: ["app": "web", "env": "dev"], sleeping: false)
            let bobRunning = try await start(.bob, name: "a", labels: ["app": "db"], sleeping: true)
            _ = try await client.waitForEnd(of: aliceDone, as: .alice)

            func ids(_ filter: Jobworker_V1_JobFilter, as caller: Caller) async throws -> Set<String> {
                Set(
                    try await client.listJobs(.with { $0.filter = filter }, metadata: caller.metadata).jobs.map(\.id))
            }
            #expect(try await ids(.with { $0.states = [.running] }, as: .admin) == [aliceRunning, bobRunning])
            #expect(try await ids(.with { $0.states = [.exited] }, as: .admin) == [aliceDone])
            #expect(try await ids(.with { $0.labels = ["app": "web"] }, as: .admin) == [aliceRunning, aliceDone])
            #expect(try await ids(.with { $0.labels = ["app": "web", "env": "prod"] }, as: .admin) == [aliceRunning])
            #expect(try await ids(.with { $0.owner = "bob" }, as: .viewer) == [bobRunning])
            #expect(try await ids(.with { $0.name = "a" }, as: .admin) == [aliceRunning, bobRunning])
            #expect(try await ids(.with { $0.name = "a" }, as: .alice) == [aliceRunning])
            #expect(try await ids(.with { $0.owner = "bob" }, as: .alice).isEmpty)
            let code = await statusCode {
                _ = try await client.listJobs(
                    .with { $0.filter = .with { $0.states = [.unspecified] } }, metadata: Caller.admin.metadata)
            }
            #expect(code == .invalidArgument)
            for id in [aliceRunning, bobRunning] {
                _ = try await client.stopJob(.with { $0.id = id }, metadata: Caller.admin.metadata)
            }
        }
    }
}

extension Jobworker_V1_JobWorker.Client where Transport == InProcessTransport.Client {
    /// Follows the job's output to its end (the job has then ended).
    func waitForEnd(of id: String, as caller: Caller) async throws {
        _ = try await output(of: id, as: caller)
    }
}
