import Foundation
import JobWorkerAPI
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
        // A name with a space and '=' is quoted: it cannot pass for other fields.
        let authority = try CertificateAuthority(
            certificatePEM: String(contentsOfFile: daemon.pki + "/ca.pem", encoding: .utf8),
            privateKeyPEM: String(contentsOfFile: daemon.pki + "/ca-key.pem", encoding: .utf8))
        try authority.issueClientCertificate(name: "x role=admin", role: "viewer").write(to: daemon.pki, name: "odd")
        let listed = try jobctl(
            "--cert", daemon.pki + "/odd.pem", "--key", daemon.pki + "/odd-key.pem", "list", daemon: daemon)
        #expect(listed.status == 0, "\(listed)")
        let odd = try #require(daemon.log.split(separator: "\n").last { $0.contains("ListJobs") })
        #expect(odd.contains(#"caller="x role=admin""#) && odd.contains("role=viewer"), "\(odd)")
        #expect(throws: DaemonDidNotStart.self) { _ = try RunningDaemon(["--log-format", "yaml"]) }
    }
}
