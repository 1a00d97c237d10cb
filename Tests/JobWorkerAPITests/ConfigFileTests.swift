import Foundation
import Testing

/// jobworkerd's settings from a file and from JOBWORKERD_* variables, beside its flags.
@Suite("Configuration file", .serialized, .timeLimit(.minutes(1)))
struct ConfigFileTests {
    /// A YAML file of `text` in a directory of its own, removed with the test's.
    static func file(_ text: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jwd-config-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("jobworkerd.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("flags win over JOBWORKERD_* variables, which win over the file; config print names each source")
    func precedence() throws {
        let path = try Self.file(
            """
            max-cpu: 2
            retain-for: 3d
            grace-period: 7
            io-device: [/dev/vda, /dev/vdb]
            stop-jobs-on-exit: true
            """)
        let printed = try daemonCommand(
            "config", "print", "--config", path, "--grace-period", "9", environment: ["JOBWORKERD_RETAIN_FOR": "5d"])
        let lines = Set(printed.output.split(separator: "\n").map(String.init))
        for expected in [
            "max-cpu: 2    # file \(path)", "retain-for: 5d    # environment JOBWORKERD_RETAIN_FOR",
            "grace-period: 9    # flag", "io-device: [/dev/vda, /dev/vdb]    # file \(path)",
            "stop-jobs-on-exit: true    # file \(path)", "max-running-jobs: 256    # default",
        ] {
            #expect(lines.contains(expected), "\(expected) in \(printed.output)")
        }
    }

    @Test("packaging/jobworkerd.yaml holds only known keys and values serve accepts")
    func packagedExample() throws {
        let path = SystemdTests.unit.deletingLastPathComponent().appendingPathComponent("jobworkerd.yaml").path
        let printed = try daemonCommand("config", "print", "--config", path)
        #expect(printed.status == 0, "\(printed.output)")
        #expect(printed.output.contains("tls-cert: /etc/jobworker/server.pem    # file \(path)"), "\(printed.output)")
        // Its certificate files exist only where it is installed; nothing else is refused.
        let refusal = printed.output.split(separator: "\n").filter { $0.hasPrefix("# serve would refuse") }
        #expect(refusal.isEmpty, "\(refusal)")
    }

    @Test("an unknown key, or a bad value, stops startup with a message naming the key and where it came from")
    func refusals() throws {
        let unknown = try Self.file("max-cpus: 2\n")
        let refused = try daemonCommand("--config", unknown, "--dev", "--listen", "127.0.0.1:0")
        #expect(refused.status == 64, "\(refused)")
        #expect(refused.output.contains("unknown key \"max-cpus\" in \(unknown)"), "\(refused.output)")
        let bad = try Self.file("max-cpu: lots\n")
        let badValue = try daemonCommand("serve", "--config", bad, "--dev", "--listen", "127.0.0.1:0")
        #expect(badValue.status == 64)
        #expect(badValue.output.contains("max-cpu (file \(bad)): \"lots\" is not a CPU amount"), "\(badValue.output)")
        let fromVariable = try daemonCommand(
            "--dev", "--listen", "127.0.0.1:0", environment: ["JOBWORKERD_MAX_RUNNING_JOBS": "many"])
        #expect(fromVariable.status == 64)
        #expect(fromVariable.output.contains("environment JOBWORKERD_MAX_RUNNING_JOBS"), "\(fromVariable.output)")
        let badFlag = try Self.file("stop-jobs-on-exit: enabled\n")
        let refusedFlag = try daemonCommand("--config", badFlag, "--dev", "--listen", "127.0.0.1:0")
        #expect(refusedFlag.status == 64)
        #expect(
            refusedFlag.output.contains("stop-jobs-on-exit (file \(badFlag)): \"enabled\" is neither true nor false"),
            "\(refusedFlag.output)")
        let missing = try daemonCommand("--config", "/nonexistent/jobworkerd.yaml", "--dev")
        #expect(missing.status == 64 && missing.output.contains("/nonexistent/jobworkerd.yaml cannot be read"))
    }

    @Test(
        "a running server takes its settings from the file",
        .enabled(if: canUseCgroups, "runs jobworkerd as root (always under CI=true)"))
    func serverUsesTheFile() throws {
        let path = try Self.file("max-running-jobs-per-owner: 1\nlog-format: text\n")
        let daemon = try RunningDaemon(["--config", path])
        let first = try jobctl("start", "--", helperPath, "sleep", daemon: daemon)
        #expect(first.status == 0, "\(first)")
        let second = try jobctl("start", "--", helperPath, "sleep", daemon: daemon)
        #expect(
            second.status == 1 && second.error.contains("admin has 1 jobs running, the limit per owner"), "\(second)")
        #expect(!daemon.log.hasPrefix("{"), "log-format: text from the file")
    }
}
