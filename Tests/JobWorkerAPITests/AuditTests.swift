import Foundation
import GRPCCore
import JobWorkerAPI
import Logging
import Synchronization
import Testing

/// Collects log records in memory.
final class LogRecords: Sendable {
    private let records = Mutex<[[String: String]]>([])

    var all: [[String: String]] { records.withLock { $0 } }

    var logger: Logger {
        Logger(label: "audit-test") { _ in CollectingHandler(sink: self) }
    }

    /// The audit records: the `rpc` messages' fields.
    var auditTrail: [[String: String]] {
        all.compactMap { record in
            guard record["message"] == "rpc" else { return nil }
            return record.filter { $0.key != "message" }
        }
    }

    fileprivate func append(_ record: [String: String]) {
        records.withLock { $0.append(record) }
    }
}

private struct CollectingHandler: LogHandler {
    let sink: LogRecords
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var record = (event.metadata ?? [:]).mapValues { "\($0)" }
        record["message"] = "\(event.message)"
        sink.append(record)
    }
}

@Suite("Audit trail", .timeLimit(.minutes(2)))
struct AuditTests {
    @Test("every RPC is recorded with caller, role, method, job id and outcome, and never with output")
    func auditTrail() async throws {
        let records = LogRecords()
        try await withAPI(auditLogger: records.logger) { client in
            let job = try await client.startJob(
                .with {
                    $0.command = helperPath
                    $0.args = ["echo-args", "secret-output"]
                }, metadata: Caller.alice.metadata
            ).status
            _ = try await client.output(of: job.id, as: .alice)
            _ = await statusCode {
                _ = try await client.getJobStatus(.with { $0.id = job.id }, metadata: Caller.bob.metadata)
            }
            _ = await statusCode {
                _ = try await client.stopJob(.with { $0.id = job.id }, metadata: Caller.viewer.metadata)
            }
            _ = await statusCode { _ = try await client.listJobs(.init()) }

            let trail = records.auditTrail
            let expected: [(String, String, String, String, String)] = [
                ("alice", "user", "jobworker.v1.JobWorker/StartJob", job.id, "ok"),
                ("alice", "user", "jobworker.v1.JobWorker/StreamJobOutput", job.id, "ok"),
                ("bob", "user", "jobworker.v1.JobWorker/GetJobStatus", job.id, "notFound"),
                ("vera", "viewer", "jobworker.v1.JobWorker/StopJob", "-", "permissionDenied"),
                ("-", "-", "jobworker.v1.JobWorker/ListJobs", "-", "unauthenticated"),
            ]
            #expect(trail.count == expected.count)
            for (record, entry) in zip(trail, expected) {
                #expect(record["caller"] == entry.0)
                #expect(record["role"] == entry.1)
                #expect(record["method"] == entry.2)
                #expect(record["job"] == entry.3)
                #expect(record["outcome"] == entry.4)
            }
            #expect(!records.all.contains { $0.values.contains { $0.contains("secret-output") } })
        }
    }
}
