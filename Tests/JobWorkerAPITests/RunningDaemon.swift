import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorkerAPI
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A jobworkerd process serving with a development PKI from a temporary state directory, on a
/// loopback port the kernel picked; SIGTERM and the directory's removal when it goes away.
final class RunningDaemon {
    let process = Process()
    let state: String
    /// The cgroup under which its jobs run: one per daemon, as a daemon removes what it finds
    /// there at startup (a restarted one is given its predecessor's).
    let cgroupParent: String
    let port: Int
    /// The operations listener's port (`/metrics`, `/readyz`), unless it was turned off.
    let opsPort: Int?
    /// What it wrote to stderr: its log, the audit trail included.
    let logPath: String
    private let ownsState: Bool

    var pki: String { state + "/dev-pki" }
    var address: String { "127.0.0.1:\(port)" }

    /// Starts `jobworkerd --dev` with `arguments` added, and waits for the line that says it
    /// serves (the job API answers from then on), or, when a test holds its adoption, the line
    /// that says where it listens (the read returns at EOF if the daemon died first).
    ///
    /// `restarting` a daemon uses its state directory and cgroup parent (and leaves the directory
    /// to it). A test daemon stops its jobs when it exits (`--stop-jobs-on-exit`), so that none
    /// outlives its test, unless `leavingJobsRunning` (the server's default) is asked for.
    init(
        _ arguments: [String] = [], restarting previous: RunningDaemon? = nil, leavingJobsRunning: Bool = false,
        environment: [String: String] = [:]
    ) throws {
        state = previous?.state ?? FileManager.default.temporaryDirectory.appendingPathComponent("jwd-\(UUID())").path
        cgroupParent = previous?.cgroupParent ?? "jobworker-daemon-test-\(UUID().uuidString.prefix(8))"
        ownsState = previous == nil
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("jwd-log-\(UUID())").path
        process.executableURL = URL(fileURLWithPath: daemonPath)
        process.arguments =
            ["--dev", "--state-dir", state, "--listen", "127.0.0.1:0", "--cgroup-parent", cgroupParent]
            + (leavingJobsRunning ? [] : ["--stop-jobs-on-exit"])
            + (arguments.contains("--ops-listen") ? [] : ["--ops-listen", "127.0.0.1:0"]) + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try process.run()
        let awaited = arguments.contains("--test-hold-adoption") ? "jobworkerd listening on " : "jobworkerd serving"
        var text = ""
        var port: Int?
        while !text.split(separator: "\n").contains(where: { $0.hasPrefix(awaited) }) {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        let lines = text.split(separator: "\n")
        if lines.contains(where: { $0.hasPrefix(awaited) }),
            let line = lines.first(where: { $0.hasPrefix("jobworkerd listening on ") })
        {
            port = line.split(separator: ":").last.flatMap { Int($0) }
        }
        guard let port else {
            process.terminate()
            throw DaemonDidNotStart(output: text)
        }
        self.port = port
        opsPort = text.split(separator: "\n").first { $0.hasPrefix("jobworkerd operations listening on ") }
            .flatMap { $0.split(separator: ":").last.flatMap { Int($0) } }
    }

    /// SIGTERM, and the exit status once it has exited.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL: the daemon ends without a word, as in a crash.
    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Where and how to reach it: for tasks, which may not hold the daemon itself.
    var endpoint: DaemonEndpoint { DaemonEndpoint(address: address, pki: pki) }

    /// Runs `body` with a client of this daemon, as its development PKI's admin.
    func withAdminClient(
        _ body: (Jobworker_V1_JobWorker.Client<HTTP2ClientTransport.Posix>) async throws -> Void
    ) async throws {
        try await endpoint.withAdminClient(body)
    }

    /// Its log so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        stop()
        if ownsState { try? FileManager.default.removeItem(atPath: state) }
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

struct DaemonDidNotStart: Error, CustomStringConvertible {
    let output: String
    var description: String { "jobworkerd did not start: \(output)" }
}

/// A daemon's address and development PKI.
struct DaemonEndpoint: Sendable {
    let address: String
    let pki: String

    /// Runs `body` with a client of the daemon, as its development PKI's admin.
    func withAdminClient(
        _ body: (Jobworker_V1_JobWorker.Client<HTTP2ClientTransport.Posix>) async throws -> Void
    ) async throws {
        let admin = try ClientCredentials(
            certificateChainPEM: String(contentsOfFile: pki + "/admin.pem", encoding: .utf8),
            privateKeyPEM: String(contentsOfFile: pki + "/admin-key.pem", encoding: .utf8),
            serverCAPEM: String(contentsOfFile: pki + "/ca.pem", encoding: .utf8))
        try await withGRPCClient(transport: TLSClientTransport.make(to: HostAndPort(address)!, credentials: admin)) {
            try await body(Jobworker_V1_JobWorker.Client(wrapping: $0))
        }
    }
}
