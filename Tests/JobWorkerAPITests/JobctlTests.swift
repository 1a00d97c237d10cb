import Foundation
import JobWorkerAPI
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// jobctl end to end: the real binary against a live jobworkerd over mutual TLS on loopback,
/// configured only by the environment and the daemon's development PKI.
@Suite(
    "jobctl", .serialized,
    .enabled(if: canUseCgroups, "runs jobworkerd as root, with cgroups and namespaces (always under CI=true)"),
    .timeLimit(.minutes(3)))
final class JobctlTests {
    let daemon: RunningDaemon

    init() throws {
        daemon = try RunningDaemon(["--max-memory", "8Gi", "--grace-period", "5"])
    }

    @Test("status and list print a tenant's control characters escaped; logs and --json keep them as they are")
    func escapedArguments() throws {
        let clipboard = "\u{1B}]52;c;ZWNobyBwd25lZA==\u{07}"
        let started = try jobctl("start", "--", helperPath, "echo-args", clipboard, "two\nlines", daemon: daemon)
        #expect(started.status == 0, "\(started)")
        let id = started.text.trimmingCharacters(in: .newlines)
        let status = try jobctl("status", id, daemon: daemon)
        #expect(status.text.contains("echo-args $'\\e]52;c;ZWNobyBwd25lZA==\\x07' $'two\\nlines'"), "\(status)")
        let list = try jobctl("list", daemon: daemon)
        for text in [status.text, list.text] {
            #expect(!text.contains("\u{1B}") && !text.contains("\u{07}"), "\(text)")
            #expect(!text.contains("two\nlines"))
        }
        let json = try jobctl("status", "--json", id, daemon: daemon)
        let object = try #require(try JSONSerialization.jsonObject(with: json.output) as? [String: Any])
        #expect(object["args"] as? [String] == ["echo-args", clipboard, "two\nlines"])
        // Output is the job's own bytes, as `docker logs` gives them.
        let logs = try jobctl("logs", id, daemon: daemon)
        #expect(logs.text.contains(clipboard), "\(logs)")
    }

    @Test(
        "-e, --env-file, -w and --stdin give the job its environment, working directory and stdin; status names the variables"
    )
    func environmentAndWorkdir() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("env-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "# a comment\n\nFROM_FILE=file value\nOVERRIDDEN=from the file\nFROM_JOBCTL\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        let started = try jobctl(
            [
                "start", "-e", "FLAG=on", "--env", "OVERRIDDEN=from -e", "--env-file", file, "-w", "/usr/share", "--",
                helperPath, "print-environment",
            ], daemon: daemon, environment: ["FROM_JOBCTL": "inherited"])
        #expect(started.status == 0, "\(started)")
        let id = started.text.trimmingCharacters(in: .newlines)
        let logs = try jobctl("logs", id, daemon: daemon)
        let lines = Set(logs.text.split(separator: "\n").map(String.init))
        #expect(
            lines.isSuperset(of: [
                "FLAG=on", "OVERRIDDEN=from -e", "FROM_FILE=file value", "FROM_JOBCTL=inherited",
            ]), "\(logs)")
        let status = try jobctl("status", id, daemon: daemon)
        #expect(status.text.contains("Workdir:  /usr/share"), "\(status)")
        #expect(status.text.contains("Env:      FLAG, FROM_FILE, FROM_JOBCTL, OVERRIDDEN"), "\(status)")
        #expect(!status.text.contains("inherited"))
        let json = try jobctl("status", "--json", id, daemon: daemon)
        let object = try #require(try JSONSerialization.jsonObject(with: json.output) as? [String: Any])
        #expect(object["working_dir"] as? String == "/usr/share")
        #expect(object["env_names"] as? [String] == ["FLAG", "FROM_FILE", "FROM_JOBCTL", "OVERRIDDEN"])

        let input = FileManager.default.temporaryDirectory.appendingPathComponent("stdin-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: input) }
        try Data([0x61, 0x00, 0xff, 0x0a]).write(to: URL(fileURLWithPath: input))
        let fed = try jobctl("start", "--stdin", input, "--", "/bin/cat", daemon: daemon)
        let fedID = fed.text.trimmingCharacters(in: .newlines)
        #expect(try jobctl("logs", fedID, daemon: daemon).output == Data([0x61, 0x00, 0xff, 0x0a]))
        #expect(try jobctl("status", fedID, daemon: daemon).text.contains("Stdin:    from the start request"))

        let refused = try jobctl("run", "-w", "/no/such/dir", "--", "/bin/true", daemon: daemon)
        #expect(refused.status == 1)
        #expect(refused.error.contains("working directory /no/such/dir"), "\(refused)")
    }

    @Test("--name and -l label a job; list --label, --state and --name filter; status and --json show them")
    func namesAndLabels() throws {
        let tag = "t\(UUID().uuidString.prefix(8).lowercased())"
        let started = try jobctl(
            "start", "--name", "report \(tag)", "-l", "run=\(tag)", "--label", "kind=batch", "--", "/bin/true",
            daemon: daemon)
        #expect(started.status == 0, "\(started)")
        let id = started.text.trimmingCharacters(in: .newlines)
        let other = try jobctl("start", "-l", "run=\(tag)", "--", helperPath, "sleep", daemon: daemon)
        let otherID = other.text.trimmingCharacters(in: .newlines)
        _ = try jobctl("logs", id, daemon: daemon)  // until it has ended

        func listed(_ arguments: String...) throws -> Set<String> {
            let list = try jobctl(["list"] + arguments, daemon: daemon)
            #expect(list.status == 0, "\(list)")
            return Set(list.text.split(separator: "\n").dropFirst().map { String($0.prefix(36)) })
        }
        #expect(try listed("-l", "run=\(tag)") == [id, otherID])
        #expect(try listed("-l", "run=\(tag)", "--state", "running") == [otherID])
        #expect(try listed("--name", "report \(tag)") == [id])
        #expect(try listed("-l", "run=\(tag)", "--limit", "1") == [otherID])  // newest first
        #expect(try jobctl("list", "--state", "sleeping", daemon: daemon).status == 2)
        let status = try jobctl("status", id, daemon: daemon)
        #expect(status.text.contains("Name:     report \(tag)"), "\(status)")
        #expect(status.text.contains("Labels:   kind=batch, run=\(tag)"), "\(status)")
        let json = try jobctl("status", "--json", id, daemon: daemon)
        let object = try #require(try JSONSerialization.jsonObject(with: json.output) as? [String: Any])
        #expect(object["name"] as? String == "report \(tag)")
        #expect(object["labels"] as? [String: String] == ["kind": "batch", "run": tag])
        _ = try jobctl("stop", "--grace", "1s", otherID, daemon: daemon)

        // Signals whose effect does not depend on the job having installed a handler yet (the
        // handlers themselves are tested through the API, after the job says it is ready).
        let signalled = try jobctl("start", "--", helperPath, "sleep", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        #expect(try jobctl("signal", signalled, "SIGCONT", daemon: daemon).status == 0)
        #expect(try jobctl("signal", signalled, "9", daemon: daemon).status == 0)
        #expect(try jobctl("wait", signalled, daemon: daemon).status == 128 + 9)
        #expect(try jobctl("signal", signalled, "HUP", daemon: daemon).status == 1)  // ended
        #expect(try jobctl("signal", signalled, "BOGUS", daemon: daemon).status == 2)

        let usr1 = try jobctl("start", "--stop-signal", "USR1", "--", helperPath, "name-signal", daemon: daemon)
        let usr1ID = usr1.text.trimmingCharacters(in: .newlines)
        #expect(try jobctl("status", usr1ID, daemon: daemon).text.contains("Stop:     SIGUSR1 first"))
        _ = try jobctl("stop", usr1ID, daemon: daemon)
        #expect(try jobctl("logs", usr1ID, daemon: daemon).text.hasSuffix("got signal \(SIGUSR1)\n"))
        #expect(try jobctl("start", "--stop-signal", "KILLME", "--", "/bin/true", daemon: daemon).status == 2)
    }

    @Test("wait exits with the job's code, and with 1 when --timeout passes first")
    func waitForJob() throws {
        let started = try jobctl("start", "--", helperPath, "exit", "3", daemon: daemon)
        let id = started.text.trimmingCharacters(in: .newlines)
        #expect(try jobctl("wait", id, daemon: daemon).status == 3)
        let sleeping = try jobctl("start", "--", helperPath, "sleep", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        let late = try jobctl("wait", "--timeout", "300ms", sleeping, daemon: daemon)
        #expect(late.status == 1, "\(late)")
        #expect(late.error.contains("did not answer in time"), "\(late)")
        _ = try jobctl("stop", "--grace", "1s", sleeping, daemon: daemon)
        #expect(try jobctl("wait", sleeping, daemon: daemon).status == 128 + 15)

        // run --timeout: stopped at its deadline, timed_out, exit 124 as timeout(1); wait says the same.
        let timedOut = try jobctl("run", "--timeout", "300ms", "--", helperPath, "sleep", daemon: daemon)
        #expect(timedOut.status == 124, "\(timedOut)")
        let last = try jobctl("list", "--state", "timed_out", daemon: daemon)
        let lastID = String(try #require(last.text.split(separator: "\n").dropFirst().first?.prefix(36)))
        #expect(try jobctl("wait", lastID, daemon: daemon).status == 124)
        #expect(try jobctl("status", lastID, daemon: daemon).text.contains("State:    timed out (SIGTERM)"))
    }

    @Test("start prints only the id; status, list, logs and stop show the job; --json parses")
    func happyPaths() throws {
        let started = try jobctl("start", "--", helperPath, "trap-term", daemon: daemon)
        #expect(started.status == 0, "\(started)")
        let id = started.text.trimmingCharacters(in: .newlines)
        #expect(started.text == id + "\n")
        #expect(UUID(uuidString: id) != nil, "\(started)")

        let status = try jobctl("status", id, daemon: daemon)
        #expect(status.status == 0)
        #expect(status.text.contains("State:    running"), "\(status)")
        #expect(status.text.contains("Owner:    admin"))
        #expect(status.text.contains("Limits:   cpu 1, memory 1Gi"), "\(status)")

        let list = try jobctl("list", daemon: daemon)
        let row = list.text.split(separator: "\n").first { $0.hasPrefix(id) }
        #expect(list.text.hasPrefix("ID "), "\(list)")
        #expect(row?.contains("running") == true && row?.contains("trap-term") == true, "\(list)")

        let stop = try jobctl("stop", "--grace", "3s", id, daemon: daemon)
        #expect(stop.status == 0, "\(stop)")
        #expect(stop.text.contains("State:    stopped (exited with code 0)"), "\(stop)")

        let logs = try jobctl("logs", id, daemon: daemon)
        #expect(logs.status == 0)
        #expect(logs.text == "ready\ngot SIGTERM\n", "\(logs)")

        let json = try jobctl("status", "--json", id, daemon: daemon)
        let object = try #require(try JSONSerialization.jsonObject(with: json.output) as? [String: Any])
        #expect(object["id"] as? String == id)
        #expect(object["state"] as? String == "stopped")
        #expect(object["exit_code"] as? Int == 0)
        #expect(object["owner"] as? String == "admin")
        #expect(object["command"] as? String == helperPath)
        #expect(object["args"] as? [String] == ["trap-term"])
        #expect(object["output_bytes"] as? Int == 18)
        #expect((object["limits"] as? [String: Any])?["memory_bytes"] as? Int == 1 << 30)
        #expect((object["usage"] as? [String: Any])?["cpu_usec"] is Int)
        for key in ["pid", "started_at", "ended_at"] { #expect(object[key] != nil, "\(key)") }

        let listJSON = try jobctl("list", "--json", daemon: daemon)
        let array = try #require(try JSONSerialization.jsonObject(with: listJSON.output) as? [[String: Any]])
        #expect(array.contains { $0["id"] as? String == id })

        let startJSON = try jobctl("start", "--json", "--", helperPath, "exit", "0", daemon: daemon)
        let startObject = try JSONSerialization.jsonObject(with: startJSON.output) as? [String: Any]
        #expect(startObject?["state"] as? String == "running" || startObject?["state"] as? String == "exited")

        let stopJSON = try jobctl("stop", "--json", id, daemon: daemon)
        #expect(
            (try JSONSerialization.jsonObject(with: stopJSON.output) as? [String: Any])?["state"] as? String
                == "stopped")
    }

    @Test(
        "run exits with the job's code: 0, 3, and 128+9 for SIGKILL",
        arguments: [(["exit", "0"], 0), (["exit", "3"], 3), (["signal", "9"], 137)] as [([String], Int32)])
    func runExitCodes(arguments: [String], expected: Int32) throws {
        let result = try jobctl(["run", "--", helperPath] + arguments, daemon: daemon)
        #expect(result.status == expected, "\(result)")
    }

    @Test("run writes binary output byte for byte, and so does logs")
    func binaryOutput() throws {
        let run = try jobctl("run", "--", helperPath, "all-bytes", daemon: daemon)
        #expect(run.status == 0)
        #expect(run.output == Data((0...255).map { UInt8($0) }))

        let size: UInt64 = 3_000_000
        let id = try jobctl("start", "--", helperPath, "pattern", "\(size)", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        let logs = try jobctl("logs", id, daemon: daemon)
        #expect(logs.status == 0)
        #expect(UInt64(logs.output.count) == size)
        #expect(matchesPattern(logs.output, at: 0))
    }

    @Test("Ctrl-C on run stops the job through the server and exits 130")
    func interruptRun() throws {
        let process = jobctlProcess(["run", "--", helperPath, "trap-term"], daemon: daemon)
        let output = Pipe()
        process.standardOutput = output
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        // Wait for the job's first line, so the job is running when the signal comes.
        var text = ""
        while !text.contains("ready\n") {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        #expect(text == "ready\n")
        process.interrupt()  // SIGINT, as Ctrl-C in a terminal
        text += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 130, "\(stderr)")
        #expect(text == "ready\ngot SIGTERM\n")  // the job got SIGTERM and its last words arrived
        let id = try #require(stderr.firstMatch(of: /stopping job ([0-9a-f-]{36})/)?.1)
        let status = try jobctl("status", "--json", String(id), daemon: daemon)
        #expect(
            (try JSONSerialization.jsonObject(with: status.output) as? [String: Any])?["state"] as? String == "stopped")
    }

    @Test("errors are one line, with the server's words, exit 1; usage errors exit 2 with the usage")
    func errorMessages() throws {
        let missing = "1b2c3d4e-0000-4000-8000-000000000000"
        let notFound = try jobctl("status", missing, daemon: daemon)
        #expect(notFound.status == 1)
        #expect(notFound.error == "jobctl: job \(missing) not found\n")

        let ceiling = try jobctl("run", "--memory", "64Gi", "--", "/bin/true", daemon: daemon)
        #expect(ceiling.status == 1)
        #expect(ceiling.error == "jobctl: memory limit 64Gi exceeds the server ceiling 8Gi\n")

        let notExecutable = try jobctl("run", "--", "/nonexistent/program", daemon: daemon)
        #expect(notExecutable.status == 1)
        #expect(notExecutable.error.hasPrefix("jobctl: /nonexistent/program"), "\(notExecutable)")

        let port = try closedPort()
        let refused = try jobctl("list", daemon: daemon, environment: ["JOBCTL_SERVER": "127.0.0.1:\(port)"])
        #expect(refused.status == 1)
        #expect(
            refused.error.hasPrefix("jobctl: cannot connect to 127.0.0.1:\(port): connection refused"), "\(refused)")

        let usage = try jobctl("run", "--cpu", "lots", "--", "/bin/true", daemon: daemon)
        #expect(usage.status == 2)
        #expect(usage.error.hasPrefix("jobctl: "))
        #expect(usage.error.contains("Usage: jobctl run"), "\(usage)")

        let noCommand = try jobctl("start", daemon: daemon)
        #expect(noCommand.status == 2)
        #expect(noCommand.error.hasPrefix("jobctl: give the command to run after --"))

        for result in [notFound, ceiling, notExecutable, refused] {
            #expect(result.error.split(separator: "\n").count == 1, "\(result)")
        }
    }

    @Test("the server's identity is verified: another CA, or a name the certificate lacks, is refused")
    func serverVerified() throws {
        let other = try CertificateAuthority.create(commonName: "someone else's CA")
        let otherCA = FileManager.default.temporaryDirectory.appendingPathComponent("other-ca-\(UUID()).pem").path
        try other.root.certificatePEM.write(toFile: otherCA, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: otherCA) }
        let untrusted = try jobctl("--ca", otherCA, "list", daemon: daemon)
        #expect(untrusted.status == 1)
        #expect(untrusted.error.hasPrefix("jobctl: cannot verify the server at \(daemon.address)"), "\(untrusted)")

        // The dev certificate names localhost, 127.0.0.1 and ::1: 127.0.0.2 reaches the same
        // socket only if the daemon listens on it, so ask a daemon that listens everywhere.
        let everywhere = try RunningDaemon(["--listen", "0.0.0.0:0"])
        let wrongName = try jobctl(
            "list", daemon: everywhere, environment: ["JOBCTL_SERVER": "127.0.0.2:\(everywhere.port)"])
        #expect(wrongName.status == 1)
        #expect(wrongName.error.hasPrefix("jobctl: cannot verify the server at 127.0.0.2"), "\(wrongName)")
        let rightName = try jobctl(
            "list", daemon: everywhere, environment: ["JOBCTL_SERVER": "localhost:\(everywhere.port)"])
        #expect(rightName.status == 0, "\(rightName)")
    }

    @Test("logs resumes at the next byte when the connection drops mid-stream")
    func logsResume() throws {
        let size: UInt64 = 8_000_000
        let id = try jobctl("start", "--", helperPath, "pattern", "\(size)", daemon: daemon).text
            .trimmingCharacters(in: .newlines)
        let proxy = try CuttingProxy(upstreamPort: daemon.port, cutAfter: 3_000_000)
        defer { proxy.close() }
        let logs = try jobctl("logs", id, daemon: daemon, environment: ["JOBCTL_SERVER": "127.0.0.1:\(proxy.port)"])
        #expect(logs.status == 0, "\(logs.error)")
        #expect(logs.error.contains("lost at byte"), "\(logs.error)")  // it did drop, and said so
        #expect(UInt64(logs.output.count) == size)
        #expect(matchesPattern(logs.output, at: 0))
    }
}

/// A loopback port nothing listens on (bound, then closed).
func closedPort() throws -> Int {
    let (descriptor, port) = try bindLoopbackSocket(listening: false)
    close(descriptor)
    return port
}

@Suite("jobctl without a server", .timeLimit(.minutes(1)))
struct JobctlOfflineTests {
    @Test("shell completion scripts for bash, zsh and fish", arguments: ["bash", "zsh", "fish"])
    func completionScripts(shell: String) throws {
        let result = try jobctl("--generate-completion-script", shell, daemon: nil)
        #expect(result.status == 0)
        #expect(result.text.contains("jobctl"))
        #expect(result.text.contains("logs"))
    }

    @Test("a server that accepts the connection but never answers fails within the deadline, never hangs")
    func silentServer() throws {
        // A listening socket that nobody accepts from: the kernel completes the TCP handshake,
        // then nothing ever comes back.
        let (listener, port) = try bindLoopbackSocket(listening: true)
        defer { close(listener) }
        let server = "127.0.0.1:\(port)"
        let pki = FileManager.default.temporaryDirectory.appendingPathComponent("pki-\(UUID())").path
        try FileManager.default.createDirectory(atPath: pki, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: pki) }
        let authority = try CertificateAuthority.create()
        try authority.root.write(to: pki, name: "ca")
        try authority.issueClientCertificate(name: "admin", role: "admin").write(to: pki, name: "admin")

        let result = try jobctl(
            "list", daemon: nil, environment: ["JOBCTL_SERVER": server, "JOBCTL_DEV_PKI": pki])
        #expect(result.status == 1)
        #expect(result.error == "jobctl: \(server) did not answer in time\n", "\(result)")
    }

    @Test("without a development PKI or flags, the message says which file is missing and what to do")
    func missingCredentials() throws {
        let result = try jobctl("list", daemon: nil, environment: ["JOBCTL_DEV_PKI": "/nonexistent/dev-pki"])
        #expect(result.status == 1)
        #expect(
            result.error
                == "jobctl: cannot read certificate /nonexistent/dev-pki/admin.pem (the development PKI's; start jobworkerd --dev, or give --cert, --key and --ca): No such file or directory\n"
        )
    }
}
