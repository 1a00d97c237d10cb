import Foundation
import GRPCCore
import GRPCInProcessTransport
import JobWorker
import JobWorkerAPI
import JobWorkerTestPrograms
import Testing

/// ListJobs a page at a time.
@Suite("Listing jobs in pages", .timeLimit(.minutes(2)))
struct ListPagingTests {
    @Test("paging through 250 jobs while 50 more start lists every original job exactly once, newest first")
    func stablePages() async throws {
        try await withAPI(
            configure: { $0.liftOwnerQuotas() },
            { client in
                var original: [String] = []
                for _ in 0..<250 {
                    original.append(
                        try await client.startJob(.with { $0.command = "/bin/true" }, metadata: Caller.alice.metadata)
                            .status
                            .id)
                }
                var seen: [String] = []
                var token = ""
                var pages = 0
                repeat {
                    let page = try await client.listJobs(
                        .with {
                            $0.pageSize = 30
                            $0.pageToken = token
                        }, metadata: Caller.alice.metadata)
                    #expect(page.jobs.count <= 30)
                    seen += page.jobs.map(\.id)
                    token = page.nextPageToken
                    pages += 1
                    // Jobs started between pages: newer than the first page, never in a later one.
                    for _ in 0..<(pages <= 10 ? 5 : 0) {
                        _ = try await client.startJob(
                            .with { $0.command = "/bin/true" }, metadata: Caller.alice.metadata)
                    }
                } while !token.isEmpty
                #expect(seen == original.reversed())
                #expect(pages == 9)
                let defaultPage = try await client.listJobs(.init(), metadata: Caller.alice.metadata)
                #expect(defaultPage.jobs.count == 100 && !defaultPage.nextPageToken.isEmpty)
                let code = await statusCode {
                    _ = try await client.listJobs(
                        .with { $0.pageToken = "not a token" }, metadata: Caller.alice.metadata)
                }
                #expect(code == .invalidArgument)
            })
    }
}
