import Foundation
import GRPCCore
import GRPCInProcessTransport
import JobWorker
import JobWorkerAPI
import JobWorkerTestPrograms
import Testing

/// WaitJob: the final status once the job has ended, bounded by the client's deadline.
@Suite("Waiting for a job", .timeLimit(.minutes(1)))
struct WaitJobTests {
    @Test("WaitJob returns the final status when the job ends, at once for an ended job, and honours the deadline")
    func waits() async throws {
        try await withAPI { client in
            let sleeping = try await client.startHelper("sleep", as: .alice)
            var short = CallOptions.defaults
            short.timeout = .milliseconds(300)
            let timedOut = await statusCode {
                _ = try await client.waitJob(
                    .with { $0.id = sleeping.id }, metadata: Caller.alice.metadata, options: short)
            }
            #expect(timedOut == .deadlineExceeded)
            async let waited = client.waitJob(.with { $0.id = sleeping.id }, metadata: Caller.alice.metadata)
            _ = try await client.stopJob(.with { $0.id = sleeping.id }, metadata: Caller.alice.metadata)
            let final = try await waited.status
            #expect(final.state == .stopped && final.hasEndedAt)
            let again = try await client.waitJob(.with { $0.id = sleeping.id }, metadata: Caller.alice.metadata).status
            #expect(again == final)
        }
    }
}
