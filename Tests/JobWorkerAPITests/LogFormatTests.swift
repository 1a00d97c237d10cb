import Foundation
import Testing

@Suite(
    "Structured logs", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(1)))
struct LogFormatTests {
    @Test("with stdout not a terminal the log is JSON lines, an audit record carrying job, method and caller")
    func jsonByDefault() throws {
        let daemon = try RunningDaemon()
        let id = try jobctl("start", "--", "/bin/true", daemon: daemon).text.trimmingCharacters(in: .newlines)
        let records = try daemon.log.split(separator: "\n").map { line in
            try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String], "not a JSON line: \(line)"
            )
        }
        #expect(records.count > 3)
        #expect(records.allSatisfy { $0["time"] != nil && $0["level"] != nil && $0["message"] != nil })
        let start = try #require(records.first { $0["method"] == "jobworker.v1.JobWorker/StartJob" })
        #expect(start["message"] == "rpc" && start["job"] == id && start["caller"] == "admin")
        #expect(start["role"] == "admin" && start["outcome"] == "ok" && start["level"] == "info")
        #expect(start["time"].flatMap { try? Date($0, strategy: .iso8601) } != nil, "\(start)")
    }

    @Test("--log-format text writes key=value fields; another format is a usage error")
    func textOnRequest() throws {
        let daemon = try RunningDaemon(["--log-format", "text"])
        _ = try jobctl("list", daemon: daemon)
        let line = try #require(daemon.log.split(separator: "\n").first { $0.contains("ListJobs") })
        #expect(line.contains("method=jobworker.v1.JobWorker/ListJobs") && line.contains("caller=admin"), "\(line)")
        #expect(throws: DaemonDidNotStart.self) { _ = try RunningDaemon(["--log-format", "yaml"]) }
    }
}
