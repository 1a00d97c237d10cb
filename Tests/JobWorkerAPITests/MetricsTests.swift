import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The operations listener and its metrics, read by a real Prometheus (Debian's package, which
/// `.ci/run` installs) and checked by promtool.
@Suite(
    "Operations listener and metrics", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(3)))
struct MetricsTests {
    static let prometheus = "/usr/bin/prometheus"
    static let promtool = "/usr/bin/promtool"

    init() throws {
        try requireInstalled(
            [Self.prometheus, Self.promtool].allSatisfy(FileManager.default.isExecutableFile(atPath:)),
            "Debian's prometheus package (prometheus, promtool)")
    }

    /// A GET of the operations listener: status and body.
    static func get(_ path: String, port: Int, method: String = "GET") async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test("/healthz, /readyz (503 with the reason while draining) and /metrics, which promtool accepts")
    func endpoints() async throws {
        let socket = try NotifySocket()
        let daemon = try RunningDaemon(
            ["--shutdown-delay", "10s"], environment: ["NOTIFY_SOCKET": socket.path])
        _ = try socket.next(containing: "READY=1")
        let port = try #require(daemon.opsPort)
        _ = try jobctl("run", "--", "/bin/echo", "metrics", daemon: daemon)
        #expect(try await Self.get("/healthz", port: port) == (200, "ok\n"))
        #expect(try await Self.get("/readyz", port: port) == (200, "ready\n"))
        #expect(try await Self.get("/nothing", port: port).0 == 404)
        #expect(try await Self.get("/metrics", port: port, method: "POST").0 == 405)

        let (status, text) = try await Self.get("/metrics", port: port)
        #expect(status == 200)
        for name in [
            "jobworker_jobs_started_total{result=\"ok\"} 1", "jobworker_jobs_ended_total{state=\"exited\"} 1",
            "jobworker_jobs_running 0", "jobworker_job_start_duration_seconds_count 1",
            "jobworker_rpcs_total{method=\"jobworker.v1.JobWorker/StartJob\",code=\"ok\"} 1",
            "jobworker_output_bytes_streamed_total 8", "jobworker_inits_parked ",
            "jobworker_server_certificate_expiry_timestamp_seconds ", "jobworker_store_write_duration_seconds_count ",
            "process_resident_memory_bytes ", "process_open_fds ", "process_cpu_seconds_total ",
        ] {
            #expect(text.contains(name), "\(name)")
        }
        #expect(!text.contains(daemon.pki) && !text.contains("admin"), "no owners, no paths")
        let check = try run(Self.promtool, ["check", "metrics"], input: Data(text.utf8))
        #expect(check.status == 0, "\(check.output)")

        kill(daemon.process.processIdentifier, SIGTERM)
        _ = try socket.next(containing: "STOPPING=1")
        #expect(try await Self.get("/readyz", port: port) == (503, "draining: shutting down\n"))
        #expect(try await Self.get("/healthz", port: port).0 == 200, "alive while it drains")
    }

    @Test("a real Prometheus scrapes the listener: the target is up and jobs started rises by the jobs started")
    func scrapedByPrometheus() async throws {
        let daemon = try RunningDaemon()
        let opsPort = try #require(daemon.opsPort)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("prometheus-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
        global:
          scrape_interval: 1s
        scrape_configs:
          - job_name: jobworkerd
            static_configs:
              - targets: ["127.0.0.1:\(opsPort)"]
        """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        let webPort = try closedPort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: Self.prometheus)
        server.arguments = [
            "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
            "--web.listen-address=127.0.0.1:\(webPort)",
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            server.terminate()
            server.waitUntilExit()
        }

        // Prometheus offers no event for "scraped": its query API is asked again each scrape
        // interval, up to a bound (a failure, never a hang).
        func value(_ query: String) async -> Double? {
            let encoded = query.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!
            guard let (status, body) = try? await Self.get("/api/v1/query?query=\(encoded)", port: webPort),
                status == 200,
                let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                let data = object["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                let sample = result.first?["value"] as? [Any], let text = sample.last as? String
            else { return nil }
            return Double(text)
        }
        func eventually(_ query: String, equals expected: Double) async throws {
            for _ in 0..<120 {
                if await value(query) == expected { return }
                try await Task.sleep(for: .milliseconds(500))
            }
            Issue.record("\(query) never became \(expected): it is \(String(describing: await value(query)))")
        }
        try await eventually("up{job=\"jobworkerd\"}", equals: 1)
        let before = await value("sum(jobworker_jobs_started_total{result=\"ok\"})") ?? 0
        let started = 5
        for _ in 0..<started { _ = try jobctl("start", "--", "/bin/true", daemon: daemon) }
        try await eventually("sum(jobworker_jobs_started_total{result=\"ok\"})", equals: before + Double(started))
    }

    /// Runs a program to its end with `input` on its stdin.
    func run(_ path: String, _ arguments: [String], input: Data) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe()
        let output = Pipe()
        process.standardInput = stdin
        process.standardOutput = output
        process.standardError = output
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
