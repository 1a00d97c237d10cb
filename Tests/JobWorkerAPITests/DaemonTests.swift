import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorkerAPI
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The jobworkerd binary, built next to the test binary.
let daemonPath = URL(fileURLWithPath: helperPath).deletingLastPathComponent().appendingPathComponent("jobworkerd").path

/// Runs jobworkerd with `arguments` to completion; returns its exit status and output.
func runDaemon(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: daemonPath)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

@Suite(
    "jobworkerd", .enabled(if: canUseCgroups, "runs as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(2)))
struct DaemonTests {
    @Test("certs init and certs issue write a CA, a server and a client certificate, keys 0600")
    func certificates() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("certs-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try runDaemon(["certs", "init", "--dir", directory]).status == 0)
        let issued = try runDaemon(["certs", "issue", "--dir", directory, "--name", "bob", "--role", "viewer"])
        #expect(issued.status == 0)
        for (file, mode) in [
            ("ca-key.pem", 0o600), ("server-key.pem", 0o600), ("bob-key.pem", 0o600), ("bob.pem", 0o644),
        ] {
            var info = stat()
            #expect(stat(directory + "/" + file, &info) == 0 && Int(info.st_mode) & 0o777 == mode, "\(file)")
        }
        let bad = try runDaemon(["certs", "issue", "--dir", directory, "--name", "eve", "--role", "root"])
        #expect(bad.status != 0)
        #expect(bad.output.contains("role must be admin, user or viewer"))
    }

    @Test("--dev serves over mTLS with its own PKI, and SIGTERM stops the jobs and exits 0")
    func devServer() async throws {
        let daemon = try RunningDaemon()
        let alice = try ClientCredentials(
            certificateChainPEM: String(contentsOfFile: daemon.pki + "/alice.pem", encoding: .utf8),
            privateKeyPEM: String(contentsOfFile: daemon.pki + "/alice-key.pem", encoding: .utf8),
            serverCAPEM: String(contentsOfFile: daemon.pki + "/ca.pem", encoding: .utf8))
        let marker = "marker-\(UUID())"
        let job = try await withGRPCClient(
            transport: TLSClientTransport.make(to: HostAndPort(daemon.address)!, credentials: alice)
        ) { grpcClient in
            let client = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
            let job = try await client.startJob(
                .with {
                    $0.command = helperPath
                    $0.args = ["trap-term", marker]
                }
            ).status
            #expect(job.owner == "alice")
            #expect(try await client.listJobs(.init()).jobs.map(\.id) == [job.id])
            return job
        }
        #expect(job.state == .running)

        #expect(daemon.stop() == 0)  // SIGTERM: a graceful shutdown
        #expect(daemon.process.terminationReason == .exit)
        // The job was stopped with the server: nothing with its marker is left.
        #expect(processes(containing: marker).isEmpty)
    }

    @Test("after a SIGKILL, a restarted server lists every job: ended ones exactly, running ones lost and gone")
    func restartAfterKill() throws {
        let daemon = try RunningDaemon()
        let marker = "marker-\(UUID())"
        let ended = try jobctl("start", "--", helperPath, "exit", "3", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        _ = try jobctl("logs", ended, daemon: daemon)  // returns once the job has ended
        let running = try jobctl("start", "--", helperPath, "trap-term", marker, daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        #expect(processes(containing: marker).count == 1)

        daemon.kill()
        // The job outlives its server (its init is its supervisor) ...
        #expect(processes(containing: marker).count == 1)

        let restarted = try RunningDaemon(restarting: daemon)
        // ... until a server that cannot adopt it ends it with its cgroup, and says so.
        #expect(processes(containing: marker).isEmpty)
        let list = try jobctl("list", "--json", daemon: restarted)
        let jobs = try #require(try JSONSerialization.jsonObject(with: list.output) as? [[String: Any]])
        #expect(jobs.map { $0["id"] as? String } == [running, ended])
        #expect(jobs.first?["state"] as? String == "lost")
        #expect(jobs.last?["state"] as? String == "exited")
        #expect(jobs.last?["exit_code"] as? Int == 3)
        #expect(try jobctl("logs", ended, daemon: restarted).status == 0)
        let output = try jobctl("logs", running, daemon: restarted)
        #expect(output.status == 0)
        #expect(output.text.hasPrefix("ready"), "\(output)")
        #expect(restarted.stop() == 0)
    }

    /// The PIDs of processes whose command line contains `marker`.
    func processes(containing marker: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
            guard Int32(entry) != nil, let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else {
                return false
            }
            return String(decoding: data, as: UTF8.self).contains(marker)
        }
    }
}
