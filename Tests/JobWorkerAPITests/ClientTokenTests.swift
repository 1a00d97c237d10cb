import Foundation
import GRPCCore
import GRPCInProcessTransport
import JobWorker
import JobWorkerAPI
import Testing

/// StartJob's client token: a retried start returns the job the first try started.
@Suite("Idempotent starts", .timeLimit(.minutes(1)))
struct ClientTokenTests {
    static func request(_ token: String, _ arguments: String...) -> Jobworker_V1_StartJobRequest {
        .with {
            $0.command = helperPath
            $0.args = arguments
            $0.clientToken = token
            $0.labels = ["retry": "yes"]
        }
    }

    @Test("concurrent StartJobs with one token start one job and return its id; another spec is ALREADY_EXISTS")
    func oneJobPerToken() async throws {
        try await withAPI { client in
            let request = Self.request("deploy-42", "exit", "0")
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await client.startJob(request, metadata: Caller.alice.metadata).status.id }
                }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(ids.count == 1)
            let listed = try await client.listJobs(.init(), metadata: Caller.alice.metadata).jobs
            #expect(listed.map(\.id) == Array(ids), "one job started")
            // Once it has ended, the token still names it: the status is its final one.
            let final = try await client.waitJob(.with { $0.id = listed[0].id }, metadata: Caller.alice.metadata)
            let retried = try await client.startJob(request, metadata: Caller.alice.metadata).status
            #expect(retried.id == final.status.id && retried.state == .exited && retried.hasEndedAt)

            let different = await statusCode {
                _ = try await client.startJob(Self.request("deploy-42", "exit", "1"), metadata: Caller.alice.metadata)
            }
            #expect(different == .alreadyExists)
            // A token is the owner's: bob's start with the same token is a job of its own.
            let bobs = try await client.startJob(request, metadata: Caller.bob.metadata).status
            #expect(bobs.id != listed[0].id && bobs.owner == "bob")
        }
    }

    @Test("a token that is too long or holds control characters is INVALID_ARGUMENT")
    func validation() async throws {
        try await withAPI { client in
            for token in [String(repeating: "t", count: 129), "line\nbreak", "nul\u{0}"] {
                let code = await statusCode {
                    _ = try await client.startJob(Self.request(token, "exit", "0"), metadata: Caller.alice.metadata)
                }
                #expect(code == .invalidArgument, "\(token.debugDescription)")
            }
            let listed = try await client.listJobs(.init(), metadata: Caller.alice.metadata).jobs
            #expect(listed.isEmpty)
        }
    }
}
