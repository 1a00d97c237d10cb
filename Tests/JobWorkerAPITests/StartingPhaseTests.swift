import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A server listens before it adopts the jobs of its previous run: what its clients, its load
/// balancer and systemd see meanwhile, held there by `--test-hold-adoption` (a FIFO the server
/// waits on until the test opens it).
@Suite(
    "Starting: adopting the previous run's jobs", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(2)))
struct StartingPhaseTests {
    @Test(
        "while adopting: health NOT_SERVING in Check and Watch, /readyz 503, the job API UNAVAILABLE, no READY=1; then SERVING and READY=1 with the adopted jobs"
    )
    func adoption() async throws {
        try requireInstalled(
            PythonGRPC.available("grpc", "grpc_health.v1.health_pb2"), "python3 with grpcio and grpcio-health-checking")
        let first = try RunningDaemon(leavingJobsRunning: true)
        let job = try jobctl("start", "--", helperPath, "sleep", daemon: first).text.trimmingCharacters(in: .newlines)
        #expect(first.stop() == 0)

        let socket = try NotifySocket()
        let hold = try AdoptionHold()
        let second = try RunningDaemon(
            ["--test-hold-adoption", hold.path], restarting: first, environment: ["NOTIFY_SOCKET": socket.path])

        let watch = PythonGRPC.process("health_probe.py", ["watch", "jobworker.v1.JobWorker"], daemon: second)
        let lines = LineReader()
        watch.standardOutput = lines.pipe
        try watch.run()
        defer { watch.terminate() }
        #expect(try lines.next() == "NOT_SERVING")
        #expect(try PythonGRPC.run("health_probe.py", "check", "", daemon: second) == "NOT_SERVING")
        let port = try #require(second.opsPort)
        #expect(
            try await MetricsTests.get("/readyz", port: port)
                == (503, "starting: adopting the jobs of the previous run\n"))
        let refused = try jobctl("status", job, daemon: second)
        #expect(refused.status == 1 && refused.error.contains("the server is starting"), "\(refused)")
        // The server answered all of this: READY=1, had it been sent before adoption, would be
        // here; systemd has been told only that the server is starting.
        let starting = try socket.next(containing: "STATUS=")
        #expect(starting == "STATUS=starting: adopting the jobs of the previous run", "\(starting)")
        #expect(!socket.hasWaitingDatagram, "systemd was told more before adoption")

        try hold.release()
        #expect(try lines.next() == "SERVING")
        let ready = try socket.next(containing: "READY=1")
        #expect(ready.contains("STATUS=serving; 1 job running"), "\(ready)")
        let adopted = try jobctl("status", "--json", job, daemon: second)
        #expect(
            (try JSONSerialization.jsonObject(with: adopted.output) as? [String: Any])?["state"] as? String
                == "running",
            "\(adopted)")
        #expect(try PythonGRPC.run("health_probe.py", "check", "", daemon: second) == "SERVING")
    }

    @Test("jobctl logs against a starting server waits until it serves, then prints the whole output")
    func logsWaitForTheStart() throws {
        let first = try RunningDaemon(leavingJobsRunning: true)
        let job = try jobctl("start", "--", "/bin/echo", "kept", daemon: first).text.trimmingCharacters(in: .newlines)
        #expect(try jobctl("wait", job, daemon: first).status == 0)
        #expect(first.stop() == 0)

        let hold = try AdoptionHold()
        let second = try RunningDaemon(["--test-hold-adoption", hold.path], restarting: first)
        let logs = jobctlProcess(["logs", job], daemon: second)
        let output = Pipe()
        logs.standardOutput = output
        let errors = LineReader()
        logs.standardError = errors.pipe
        try logs.run()
        let said = try errors.next()
        #expect(said.contains("is starting; waiting until it serves"), "\(said)")
        try hold.release()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        logs.waitUntilExit()
        #expect(printed == "kept\n")
        #expect(logs.terminationStatus == 0)
    }
}

/// The FIFO `--test-hold-adoption` names: the server waits on it, after it listens and before it
/// adopts, until `release()` opens it for writing.
struct AdoptionHold: ~Copyable {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("jwd-hold-\(UUID())").path

    init() throws {
        try #require(mkfifo(path, 0o600) == 0, "mkfifo \(path)")
    }

    func release() throws {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        try #require(descriptor >= 0, "open \(path)")
        close(descriptor)
    }

    deinit { unlink(path) }
}
