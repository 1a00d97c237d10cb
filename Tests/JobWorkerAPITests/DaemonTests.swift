import CLinuxEvents
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorkerAPI
import JobWorkerTestPrograms
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The jobworkerd binary, built next to the test binary.
let daemonPath = buildDirectory.appendingPathComponent("jobworkerd").path

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

    @Test(
        "jobs run as a uid of their own by default (JobStatus says which), as --job-user says otherwise, and an unknown user is a usage error"
    )
    func jobUser() throws {
        let byDefault = try RunningDaemon(["--job-uids", "1900300000-1900300009"])
        let job = try jobctl("start", "--", helperPath, "print-credentials", daemon: byDefault).text
            .trimmingCharacters(in: .newlines)
        _ = try jobctl("logs", job, daemon: byDefault)  // returns once the job has ended
        let recorded = try status(of: job, daemon: byDefault)
        let uid = try #require(recorded["uid"] as? Int)
        #expect((1_900_300_000...1_900_300_009).contains(uid))
        #expect(recorded["gid"] as? Int == uid)
        let logged = try jobctl("logs", job, daemon: byDefault).text
        #expect(logged.contains("uid \(uid) \(uid) \(uid)\ngid \(uid) \(uid) \(uid)\n"), "\(logged)")
        let overlapping = try runDaemon(["--dev", "--job-uids", "65534-65534"])
        #expect(overlapping.status == 64)
        #expect(
            overlapping.output.contains("--job-uids: 65534-65534 overlaps user nobody (65534)"), "\(overlapping.output)"
        )
        let configured = try RunningDaemon(["--job-user", "4242:4343"])
        let printed = try jobctl("run", "--", helperPath, "print-credentials", daemon: configured).text
        #expect(printed.contains("uid 4242 4242 4242\ngid 4343 4343 4343\n"), "\(printed)")
        let unknown = try runDaemon(["--dev", "--job-user", "no-such-user-jobworker"])
        #expect(unknown.status == 64)
        #expect(unknown.output.contains("--job-user: no user \"no-such-user-jobworker\" on this host"))
    }

    @Test(
        "through the API a job is confined: read-only host, its own /tmp, the server's key out of reach, the filter on")
    func confinedThroughAPI() throws {
        let daemon = try RunningDaemon()
        let key = daemon.state + "/dev-pki/server-key.pem"
        try #require(FileManager.default.fileExists(atPath: key))
        let created = try jobctl(
            "run", "--", helperPath, "try-create", "/probe", "/etc/probe", "/tmp/probe", daemon: daemon)
        #expect(
            created.text == "/probe Read-only file system\n/etc/probe Read-only file system\n/tmp/probe ok\n",
            "\(created.text)")
        let opened = try jobctl("run", "--", helperPath, "try-open", "read", key, daemon: daemon)
        #expect(opened.text == "\(key) No such file or directory\n")
        let calls = try jobctl("run", "--", "grep", "-E", "^(Seccomp|CapBnd):", "/proc/self/status", daemon: daemon)
        #expect(calls.text == "CapBnd:\t0000000000000000\nSeccomp:\t2\n")
    }

    @Test("--max-output-bytes caps a job's log; status says how much was dropped, and logs give the kept bytes")
    func outputCap() throws {
        let daemon = try RunningDaemon(["--max-output-bytes", "64Ki"])
        let job = try jobctl("start", "--", helperPath, "pattern", "200000", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        let logged = try jobctl("logs", job, daemon: daemon).output  // returns once the job has ended
        #expect(logged.count == 65536)
        #expect(logged.elementsEqual((0..<65536).map { UInt8($0 % 251) }))
        let recorded = try status(of: job, daemon: daemon)
        #expect(recorded["state"] as? String == "exited")
        #expect(recorded["output_bytes"] as? Int == 65536)
        #expect(recorded["output_truncated"] as? Bool == true)
        #expect(recorded["output_dropped_bytes"] as? Int == 200000 - 65536)
        let text = try jobctl("status", job, daemon: daemon).text
        #expect(text.contains("65536 bytes (134464 more dropped past the cap)"), "\(text)")
    }

    @Test("a stop in progress survives a crash of the server: the next one kills on time and records a stop")
    func stopSurvivesCrash() async throws {
        let daemon = try RunningDaemon()
        // Where jobs can see it (each has a /tmp of its own).
        let visible = try TestPrograms.makeJobVisibleDirectory()
        defer { try? FileManager.default.removeItem(atPath: visible) }
        let fifo = visible + "/fifo"
        #expect(mkfifo(fifo, 0o644) == 0)  // the job (nobody) reads it
        // Both note SIGTERM and go on; the second ends once the FIFO has a line.
        let killedOnTime = try jobctl("start", "--", helperPath, "note-term", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        let endsMeanwhile = try jobctl("start", "--", helperPath, "note-term-then-fifo", fifo, daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        // Stops with 2 s and an hour of grace, from clients that the crash then cuts off.
        var stoppers: [Process] = []
        for (job, grace) in [(killedOnTime, "2s"), (endsMeanwhile, "3600s")] {
            let stopper = jobctlProcess(["stop", "--grace", grace, job], daemon: daemon)
            stopper.standardOutput = FileHandle.nullDevice
            stopper.standardError = FileHandle.nullDevice
            try stopper.run()
            stoppers.append(stopper)
            try await withAdminClient(of: daemon) { client in
                try await client.streamJobOutput(.with { $0.id = job }) { response in
                    var text = ""
                    for try await message in response.messages {
                        text += String(decoding: message.data, as: UTF8.self)
                        if text.contains("noted SIGTERM") { break }
                    }
                }
            }
        }
        let initOfEndsMeanwhile = try #require(Int32(try status(of: endsMeanwhile, daemon: daemon)["pid"] as? Int ?? 0))
        daemon.kill()
        for stopper in stoppers { stopper.waitUntilExit() }
        try writeLine(to: fifo)  // opens once the job has the FIFO open too
        waitForExit(of: initOfEndsMeanwhile)

        // The first job ignores SIGTERM: only the recorded deadline ends it.
        let restarted = try RunningDaemon(restarting: daemon)
        try await withAdminClient(of: restarted) { client in
            var options = CallOptions.defaults
            options.timeout = .seconds(60)  // the job's end, or a failure (not a hang)
            try await client.streamJobOutput(.with { $0.id = killedOnTime }, options: options) { response in
                for try await _ in response.messages {}
            }
            let killed = try await client.getJobStatus(.with { $0.id = killedOnTime }).status
            #expect(killed.state == .stopped && killed.signal == SIGKILL, "\(killed)")
            let ended = try await client.getJobStatus(.with { $0.id = endsMeanwhile }).status
            #expect(ended.state == .stopped && ended.exitCode == 3, "\(ended)")
        }
    }

    /// Runs `body` with a client of `daemon` that has its admin certificate.
    func withAdminClient(
        of daemon: RunningDaemon,
        _ body: (Jobworker_V1_JobWorker.Client<HTTP2ClientTransport.Posix>) async throws -> Void
    ) async throws {
        try await daemon.withAdminClient(body)
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

    @Test("after a SIGKILL with 10 jobs running and 10 ended, a restarted server adopts the running ones")
    func restartAfterKill() throws {
        let daemon = try RunningDaemon()
        let scratch = try TestPrograms.makeJobVisibleDirectory()  // each job has a /tmp of its own
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        func start(_ words: String...) throws -> String {
            try jobctl(["start", "--"] + words, daemon: daemon).text.trimmingCharacters(in: .newlines)
        }
        // 10 ended, each with its own exit code.
        var ended: [String] = []
        for code in 0..<10 {
            ended.append(try start(helperPath, "exit", "\(code)"))
            _ = try jobctl("logs", ended[code], daemon: daemon)  // returns once the job has ended
        }
        // 10 running: 5 to be stopped, 5 that end on their own once their FIFO gets a line.
        let stoppable = try (0..<5).map { _ in try start(helperPath, "trap-term") }
        var fifos: [String] = []
        var endsLater: [String] = []
        for index in 0..<5 {
            let fifo = scratch + "/later-\(index)"
            #expect(mkfifo(fifo, 0o644) == 0)  // the jobs (nobody) read it
            fifos.append(fifo)
            endsLater.append(
                try start("/bin/sh", "-c", "echo before; read line < \(fifo); echo after; exit \(20 + index)"))
        }
        // And two that meet their fate while no server runs.
        let meanwhile = scratch + "/meanwhile"
        #expect(mkfifo(meanwhile, 0o644) == 0)
        let endsMeanwhile = try start("/bin/sh", "-c", "read line < \(meanwhile); exit 5")
        let marker = "marker-\(UUID())"
        let losesInit = try start(helperPath, "sleep", marker)
        let initOfLost = try #require(Int32(try status(of: losesInit, daemon: daemon)["pid"] as? Int ?? 0))
        let initOfMeanwhile = try #require(Int32(try status(of: endsMeanwhile, daemon: daemon)["pid"] as? Int ?? 0))

        daemon.kill()
        try writeLine(to: meanwhile)
        waitForExit(of: initOfMeanwhile)
        #expect(Glibc.kill(initOfLost, SIGKILL) == 0)
        waitForExit(of: initOfLost)

        let restarted = try RunningDaemon(restarting: daemon)
        let list = try jobctl("list", "--json", daemon: restarted)
        let jobs = try #require(try JSONSerialization.jsonObject(with: list.output) as? [[String: Any]])
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0["id"] as? String ?? "", $0) })
        #expect(
            jobs.map { $0["id"] as? String }
                == ([losesInit, endsMeanwhile] + endsLater.reversed() + stoppable.reversed() + ended.reversed()))
        for (code, id) in ended.enumerated() {
            #expect(byID[id]?["state"] as? String == "exited" && byID[id]?["exit_code"] as? Int == code)
        }
        for id in stoppable + endsLater { #expect(byID[id]?["state"] as? String == "running", "\(id)") }
        #expect(byID[endsMeanwhile]?["state"] as? String == "exited" && byID[endsMeanwhile]?["exit_code"] as? Int == 5)
        #expect(byID[losesInit]?["state"] as? String == "lost")
        #expect(processes(containing: marker).isEmpty)
        #expect(!cgroupExists(losesInit, parent: restarted.cgroupParent))

        // The adopted jobs: stop works, live output goes on, a job's own end is reported exactly.
        for id in stoppable {
            let stop = try jobctl("stop", "--json", id, daemon: restarted)
            #expect(
                (try JSONSerialization.jsonObject(with: stop.output) as? [String: Any])?["state"] as? String
                    == "stopped")
            #expect(try jobctl("logs", id, daemon: restarted).text == "ready\ngot SIGTERM\n")
        }
        for (index, id) in endsLater.enumerated() {
            try writeLine(to: fifos[index])
            #expect(try jobctl("logs", id, daemon: restarted).text == "before\nafter\n")
            let final = try status(of: id, daemon: restarted)
            #expect(final["state"] as? String == "exited" && final["exit_code"] as? Int == 20 + index, "\(final)")
            #expect(!cgroupExists(id, parent: restarted.cgroupParent))
        }
        #expect(restarted.stop() == 0)
    }

    @Test("by default SIGTERM leaves running jobs running, and the next server adopts them")
    func keepJobsOnShutdown() throws {
        let marker = "marker-\(UUID())"
        let daemon = try RunningDaemon(leavingJobsRunning: true)
        let job = try jobctl("start", "--", helperPath, "trap-term", marker, daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        #expect(daemon.stop() == 0)
        #expect(processes(containing: marker).count == 1)
        let next = try RunningDaemon(restarting: daemon)
        #expect(try status(of: job, daemon: next)["state"] as? String == "running")
        let stop = try jobctl("stop", "--json", job, daemon: next)
        #expect(
            (try JSONSerialization.jsonObject(with: stop.output) as? [String: Any])?["state"] as? String == "stopped")
        #expect(processes(containing: marker).isEmpty)
        #expect(next.stop() == 0)
    }

    func status(of id: String, daemon: RunningDaemon) throws -> [String: Any] {
        let result = try jobctl("status", "--json", id, daemon: daemon)
        return try #require(try JSONSerialization.jsonObject(with: result.output) as? [String: Any], "\(result)")
    }

    /// Opens the FIFO for writing (the job is its reader) and writes a line.
    func writeLine(to fifo: String) throws {
        let handle = try #require(FileHandle(forWritingAtPath: fifo))
        handle.write(Data("go\n".utf8))
        try handle.close()
    }

    /// Waits, through a pidfd, until the process has exited (it is not our child).
    func waitForExit(of pid: Int32) {
        let pidfd = linux_pidfd_open(pid)
        guard pidfd >= 0 else { return }  // already gone
        defer { close(pidfd) }
        var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        while poll(&descriptor, 1, -1) < 0 && errno == EINTR {}
    }

    /// Whether the job's cgroup still exists in the pids hierarchy (v1) or the unified one.
    func cgroupExists(_ id: String, parent: String) -> Bool {
        let candidates = ["/sys/fs/cgroup/pids/\(parent)/\(id)", "/sys/fs/cgroup/\(parent)/\(id)"]
        return candidates.contains { FileManager.default.fileExists(atPath: $0) }
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
