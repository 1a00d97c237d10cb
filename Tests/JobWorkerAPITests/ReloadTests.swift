import Foundation
import JobWorkerAPI
import JobWorkerTestPrograms
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite(
    "Reloading TLS material and settings", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(2)))
struct ReloadTests {
    @Test(
        "after SIGHUP a new connection gets the new certificate while a stream on an old one goes on; a broken key keeps it"
    )
    func rotatesCertificate() async throws {
        let socket = try NotifySocket()
        let daemon = try RunningDaemon(environment: ["NOTIFY_SOCKET": socket.path])
        _ = try socket.next(containing: "READY=1")
        let serverPEM = daemon.pki + "/server.pem"
        let original = try String(contentsOfFile: serverPEM, encoding: .utf8)
        #expect(try PythonGRPC.run("peer_certificate.py", serverPEM, daemon: daemon) == "same")

        // A stream on a connection opened before the rotation, waiting for the job's second half.
        let half = 251 * 400
        let visible = try TestPrograms.makeJobVisibleDirectory()
        defer { try? FileManager.default.removeItem(atPath: visible) }
        let fifo = visible + "/fifo"
        #expect(mkfifo(fifo, 0o644) == 0)
        let id = try jobctl("start", "--", helperPath, "pattern-fifo-pattern", "\(half)", fifo, daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        let output = UpgradeTests.ReceivedOutput()
        let (firstHalf, gotFirstHalf) = AsyncStream<Void>.makeStream()
        let endpoint = daemon.endpoint
        let stream = Task {
            try await endpoint.withAdminClient { client in
                try await client.streamJobOutput(.with { $0.id = id }) { response in
                    for try await message in response.messages {
                        output.append(message)
                        if output.count == half { gotFirstHalf.yield() }
                    }
                }
            }
        }
        var waiting = firstHalf.makeAsyncIterator()
        await waiting.next()

        let authority = try CertificateAuthority(
            certificatePEM: String(contentsOfFile: daemon.pki + "/ca.pem", encoding: .utf8),
            privateKeyPEM: String(contentsOfFile: daemon.pki + "/ca-key.pem", encoding: .utf8))
        // As an operator rotates: the new files written aside, then renamed over the old.
        let staging = daemon.pki + "/staging"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
        try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            .write(to: staging, name: "server")
        for name in ["server.pem", "server-key.pem"] {
            #expect(rename(staging + "/" + name, daemon.pki + "/" + name) == 0)
        }
        let rotated = try String(contentsOfFile: serverPEM, encoding: .utf8)
        #expect(rotated != original)
        kill(daemon.process.processIdentifier, SIGHUP)
        _ = try socket.next(containing: "RELOADING=1")
        _ = try socket.next(containing: "READY=1")
        #expect(try PythonGRPC.run("peer_certificate.py", serverPEM, daemon: daemon) == "same")

        // A broken key: the reload fails, says why, and the rotated certificate stays.
        try Data("not a key\n".utf8).write(to: URL(fileURLWithPath: daemon.pki + "/server-key.pem"))
        let asked = try daemonCommand("reload", "--state-dir", daemon.state)
        #expect(asked.status == 0, "\(asked)")
        _ = try socket.next(containing: "RELOADING=1")
        _ = try socket.next(containing: "READY=1")
        #expect(try PythonGRPC.run("peer_certificate.py", serverPEM, daemon: daemon) == "same")
        #expect(daemon.log.contains("reload failed, keeping the current TLS material"), "\(daemon.log.suffix(1500))")

        // The old connection's stream was never interrupted: the rest of the output arrives on it.
        let gate = try #require(FileHandle(forWritingAtPath: fifo))
        gate.write(Data("go\n".utf8))
        try gate.close()
        try await stream.value
        #expect(output.count == 2 * half)
        #expect(output.bytes.enumerated().allSatisfy { $0.element == UInt8($0.offset % 251) })
    }

    @Test(
        "SIGHUP applies the file's new quotas and ceilings to new starts, names a changed setting that takes a restart, and a bad file changes nothing"
    )
    func reloadsSettings() throws {
        let socket = try NotifySocket()
        let path = try ConfigFileTests.file("max-running-jobs-per-owner: 1\nmax-memory: 2Gi\n")
        let daemon = try RunningDaemon(["--config", path], environment: ["NOTIFY_SOCKET": socket.path])
        _ = try socket.next(containing: "READY=1")
        func start(_ arguments: String...) throws -> JobctlResult {
            try jobctl(["start"] + arguments + ["--", helperPath, "sleep"], daemon: daemon)
        }
        func reload(_ text: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            kill(daemon.process.processIdentifier, SIGHUP)
            _ = try socket.next(containing: "RELOADING=1")
            _ = try socket.next(containing: "READY=1")
        }
        let big = try start("--memory", "1536Mi")
        #expect(big.status == 0, "\(big)")
        let second = try start()
        #expect(
            second.status == 1 && second.error.contains("admin has 1 jobs running, the limit per owner"), "\(second)")

        try reload("max-running-jobs-per-owner: 2\nmax-memory: 1Gi\nidle-timeout: 1m\n")
        let aboveCeiling = try start("--memory", "1536Mi")
        #expect(
            aboveCeiling.status == 1 && aboveCeiling.error.contains("exceeds the server ceiling"), "\(aboveCeiling)")
        #expect(try start().status == 0, "a second job for the owner, under the new quota")
        let third = try start()
        #expect(third.status == 1 && third.error.contains("admin has 2 jobs running, the limit per owner"), "\(third)")
        #expect(
            daemon.log.contains("taking effect only at the next start: idle-timeout"), "\(daemon.log.suffix(1500))")

        // Files serve would refuse: the reload says why, and the settings in force stay. A value
        // that parses but does not hold together (the default memory above the new ceiling):
        try reload("max-running-jobs-per-owner: 3\nmax-memory: 512Mi\n")
        #expect(daemon.log.contains("exceeds its ceiling"), "\(daemon.log.suffix(1500))")
        #expect(try start().error.contains("admin has 2 jobs running"))
        // A key that is none:
        try reload("max-running-jobs-per-owner: 3\nbogus-key: 1\n")
        #expect(daemon.log.contains("reload failed"), "\(daemon.log.suffix(1500))")
        #expect(daemon.log.contains("unknown key \\\"bogus-key\\\""), "\(daemon.log.suffix(1500))")
        let stillTwo = try start()
        #expect(stillTwo.status == 1 && stillTwo.error.contains("admin has 2 jobs running"), "\(stillTwo)")
    }
}

/// Runs `jobworkerd` with `arguments` (and `environment` added) to its end: its exit status and
/// what it printed, stdout and stderr together.
func daemonCommand(_ arguments: String..., environment: [String: String] = [:]) throws -> (
    status: Int32, output: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: daemonPath)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JOBWORKERD_") }
        .merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}
