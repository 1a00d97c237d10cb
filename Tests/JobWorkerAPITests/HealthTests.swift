import Foundation
import JobWorkerAPI
import Testing

/// Stops a test that needs `what`, which `.ci/run` installs: a skip with the reason elsewhere,
/// a failure under CI (where it must be there).
func requireInstalled(_ available: Bool, _ what: String) throws {
    if !available && ProcessInfo.processInfo.environment["CI"] == "true" {
        Issue.record("\(what) is missing: .ci/run installs it")
    }
    try #require(available, "needs \(what)")
}

/// Python's official gRPC stack (grpcio and grpcio-health-checking, installed by `.ci/run`).
enum PythonGRPC {
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scripts")

    /// Whether `python3` can import `modules`; under CI their absence is a failure, not a skip.
    static func available(_ modules: String...) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", modules.map { "import \($0)" }.joined(separator: "; ")]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    /// A script of `Tests/Scripts` against `daemon` with the client certificate `name` of its PKI
    /// (`<name>.pem`, `<name>-key.pem`).
    static func process(_ script: String, _ arguments: [String], daemon: RunningDaemon, as name: String = "admin")
        -> Process
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", scripts.appendingPathComponent(script).path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging([
            "PROBE_SERVER": daemon.address, "PROBE_CA": daemon.pki + "/ca.pem",
            "PROBE_CERT": daemon.pki + "/\(name).pem", "PROBE_KEY": daemon.pki + "/\(name)-key.pem",
        ]) { $1 }
        return process
    }

    /// Runs a script to its end and returns what it printed.
    static func run(_ script: String, _ arguments: String..., daemon: RunningDaemon, as name: String = "admin") throws
        -> String
    {
        let process = process(script, arguments, daemon: daemon, as: name)
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite(
    "gRPC health", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(2)))
struct HealthTests {
    init() throws {
        try requireInstalled(
            PythonGRPC.available("grpc", "grpc_health.v1.health_pb2"), "python3 with grpcio and grpcio-health-checking")
    }

    @Test("Check and Watch: SERVING for the server and the job API, for any role; NOT_SERVING while draining")
    func servingThenDraining() throws {
        let daemon = try RunningDaemon(["--shutdown-delay", "10s"])
        // A certificate of the CA whose role is none of the server's: health is not about jobs.
        let authority = try CertificateAuthority(
            certificatePEM: String(contentsOfFile: daemon.pki + "/ca.pem", encoding: .utf8),
            privateKeyPEM: String(contentsOfFile: daemon.pki + "/ca-key.pem", encoding: .utf8))
        try authority.issueClientCertificate(name: "lb", role: "load-balancer").write(to: daemon.pki, name: "lb")

        for service in ["", "jobworker.v1.JobWorker"] {
            for name in ["admin", "viewer", "lb"] {
                #expect(try PythonGRPC.run("health_probe.py", "check", service, daemon: daemon, as: name) == "SERVING")
            }
        }
        #expect(try PythonGRPC.run("health_probe.py", "check", "jobworker.v1.Other", daemon: daemon) == "NOT_FOUND")
        // The job API is still the roles' business.
        #expect(try jobctl("list", daemon: daemon).status == 0)

        let watch = PythonGRPC.process("health_probe.py", ["watch", ""], daemon: daemon, as: "lb")
        let lines = LineReader()
        watch.standardOutput = lines.pipe
        try watch.run()
        #expect(try lines.next() == "SERVING")
        kill(daemon.process.processIdentifier, SIGTERM)
        #expect(try lines.next() == "NOT_SERVING")
        // During the shutdown delay the server still answers, and says it is not serving.
        #expect(try PythonGRPC.run("health_probe.py", "check", "", daemon: daemon) == "NOT_SERVING")
        #expect(try lines.next() == "END UNAVAILABLE", "the watch ends when the server stops")
        watch.waitUntilExit()
        #expect(daemon.stop() == 0)

        // Health calls are not audited one by one; the job API's are.
        let log = daemon.log
        #expect(!log.contains("grpc.health"), "\(log.suffix(2000))")
        #expect(log.contains("ListJobs"), "\(log.suffix(2000))")
    }
}

/// Lines a child process writes to a pipe, one at a time as they come.
final class LineReader {
    let pipe = Pipe()
    private var buffer = Data()

    struct Ended: Error { let rest: String }

    /// The next line, without its newline; waits for it (`Ended` if the writer closes first).
    func next() throws -> String {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer = Data(buffer[(newline + 1)...])
                return line
            }
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { throw Ended(rest: String(decoding: buffer, as: UTF8.self)) }
            buffer += data
        }
    }
}
