import Foundation
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// Namespaces and the init, on the real kernel.
@Suite(
    "Isolation with namespaces and an init",
    .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)), .timeLimit(.minutes(2)))
struct IsolationTests {
    func run(_ worker: Worker, _ mode: String, _ arguments: String...) async throws -> [String] {
        let job = try await worker.start(command: helperPath, arguments: [mode] + arguments, owner: "tester")
        let ended = try await worker.waitUntilEnded(job.id)
        #expect(ended.exitCode == 0)
        return String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            .split(separator: "\n").map(String.init)
    }

    @Test("inside, /proc lists only the job's processes, and the job is PID 2 under the init")
    func pidNamespace() async throws {
        try await withWorker { worker in
            let lines = try await run(worker, "print-pids")
            #expect(lines.first == "self 2")
            #expect(Set(lines.dropFirst()) == ["pid 1", "pid 2"])
        }
    }

    @Test("inside, the only interface is lo, it is up, and the host's loopback listeners are out of reach")
    func networkNamespace() async throws {
        // A listener on the host's 127.0.0.1, on a port the kernel picks.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                try #require(bind(listener, raw, length) == 0)
                try #require(listen(listener, 16) == 0)
                try #require(getsockname(listener, raw, &length) == 0)
            }
        }
        let port = UInt16(bigEndian: address.sin_port)
        try await withWorker { worker in
            let lines = try await run(worker, "network", "\(port)")
            #expect(lines.filter { $0.hasPrefix("interface ") } == ["interface lo"])
            #expect(lines.contains("lo up"))
            #expect(lines.contains("connect Connection refused"))
        }
    }

    @Test("a mount made by the job does not appear on the host")
    func mountNamespace() async throws {
        try await withWorker {
            $0.jobUsers = .worker  // mounting takes root
            $0.systemCallFilter = .off  // which the filter refuses even to root
        } _: { worker in
            // A directory of the host's (read-only inside: a mount point still works).
            let directory = "/mnt"
            let job = try await worker.startHelper("mount-tmpfs", directory)
            _ = try await worker.waitForOutput(of: job.id, containing: "mounted")
            let hostMounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            #expect(!hostMounts.contains(" \(directory) "))
            #expect(!hostMounts.contains("jobworker-test"))
            _ = try await worker.stop(job.id, gracePeriod: .zero)
        }
    }

    @Test("the host name inside is the job's short id")
    func utsNamespace() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("hostname")
            _ = try await worker.waitUntilEnded(job.id)
            let name = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            #expect(name == job.id.shortDescription + "\n")
        }
    }

    @Test("a job that traps SIGTERM gets it through the init and stops promptly and cleanly")
    func sigtermThroughInit() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("trap-term")
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            let began = ContinuousClock.now
            let stopped = try await worker.stop(job.id, gracePeriod: .seconds(30))
            #expect(ContinuousClock.now - began < .seconds(5))
            #expect(stopped.state == .stopped)
            #expect(stopped.termination == .exited(code: 0))
            let output = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            #expect(output.hasSuffix("got SIGTERM\n"))
        }
    }

    @Test("a double-forked daemon that ignores SIGTERM dies with the job")
    func daemonDiesWithJob() async throws {
        try await withWorker { worker in
            let marker = makeMarker()
            let job = try await worker.startHelper("daemon", marker)
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            #expect(hostProcesses(withArgument: marker).count == 2, "the job and its daemon")
            let stopped = try await worker.stop(job.id, gracePeriod: .milliseconds(200))
            #expect(stopped.state == .stopped)
            #expect(hostProcesses(withArgument: marker).isEmpty)
        }
    }

    @Test("the init reaps orphans: 100 of them leave no zombie while the job runs")
    func zombieReaping() async throws {
        try await withWorker { worker in
            let lines = try await run(worker, "orphans", "100")
            #expect(lines == ["zombies 0"])
        }
    }

    @Test("the job's exit code and signal pass through the init unchanged")
    func statusThroughInit() async throws {
        try await withWorker { worker in
            let exited = try await worker.startHelper("exit", "42")
            #expect(try await worker.waitUntilEnded(exited.id).termination == .exited(code: 42))
            let signaled = try await worker.startHelper("signal", "\(SIGSEGV)")
            let ended = try await worker.waitUntilEnded(signaled.id)
            #expect(ended.termination == .signaled(SIGSEGV))
            #expect(ended.state == .killed)
        }
    }

    @Test("a job that cannot be executed fails start through the init, leaving nothing behind")
    func execFailureThroughInit() async throws {
        try await withWorker { worker in
            await #expect {
                try await worker.start(command: "/nonexistent/program", owner: "tester")
            } throws: { error in
                (error as? JobWorkerError)?.code == .commandNotFound
            }
            #expect(worker.list().isEmpty)
            await worker.shutdown(gracePeriod: .zero)
            let leftovers = try cgroupDirectories(of: worker)
            #expect(leftovers.isEmpty)
        }
    }

    @Test("a setup step that fails is named in the error, and nothing is left behind")
    func setupFailureNamesStep() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let brokenInit = directory + "/not-an-init"
        try Data([0x7f, 0x45, 0x4c, 0x46, 0x00]).write(to: URL(fileURLWithPath: brokenInit))
        chmod(brokenInit, 0o755)
        try await withWorker { configuration in
            configuration.initPath = brokenInit
        } _: { worker in
            await #expect(
                throws: JobWorkerError(
                    .systemFailure, "starting the job (execve of the init): Exec format error", systemError: ENOEXEC)
            ) {
                try await worker.startHelper("exit", "0")
            }
            #expect(worker.list().isEmpty)
            await worker.shutdown(gracePeriod: .zero)
            #expect(try cgroupDirectories(of: worker).isEmpty)
            let logs = try FileManager.default.contentsOfDirectory(
                atPath: worker.configuration.stateDirectory + "/output")
            #expect(logs.isEmpty)
        }
    }

    @Test("a start whose parked init was killed from outside still succeeds, with a fresh init")
    func killedParkedInit() async throws {
        try await withWorker { worker in
            let inits = try #require(worker.inits)
            await inits.waitUntilParked(worker.configuration.prestartedInits)
            let parked = inits.parkedProcesses
            #expect(parked.count == worker.configuration.prestartedInits)
            for pid in parked { kill(pid, SIGKILL) }
            let job = try await worker.startHelper("echo-args", "still works")
            #expect(try await worker.waitUntilEnded(job.id).exitCode == 0)
            #expect(String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self) == "still works\n")
        }
    }

    @Test("a start whose parked init was stopped from outside gives it up after the reply timeout")
    func stoppedParkedInit() async throws {
        try await withWorker {
            $0.prestartedInits = 1
        } _: { worker in
            let inits = try #require(worker.inits)
            await inits.waitUntilParked(1)
            let stopped = try #require(inits.parkedProcesses.first)
            kill(stopped, SIGSTOP)
            let job = try await worker.startHelper("echo-args", "after a stopped init")
            #expect(try await worker.waitUntilEnded(job.id).exitCode == 0)
            #expect(job.pid != stopped)
            #expect(waitForProcessToEnd(stopped, timeout: .seconds(5)))
        }
    }

    @Test("inside, the host's memory, keys and timers read as empty, and kernel settings are read-only (even for root)")
    func protectedProc() async throws {
        try await withWorker {
            $0.jobUsers = .worker  // root: only the mounts stand in the way
        } _: { worker in
            // Of the masked files, those this kernel has (on the host, as root, none is empty).
            let masked = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"].filter {
                FileManager.default.fileExists(atPath: $0)
            }
            try #require(!masked.isEmpty)
            let script = (masked.map { "wc -c < \($0)" } + ["ls -A /proc/acpi | wc -l"]).joined(separator: "; ")
            let sizes = try await worker.start(command: "/bin/sh", arguments: ["-c", script], owner: "tester")
            #expect(try await worker.waitUntilEnded(sizes.id).exitCode == 0)
            let counts = String(decoding: try await worker.collectOutput(of: sizes.id), as: UTF8.self)
            #expect(counts.split(separator: "\n") == Array(repeating: "0", count: masked.count + 1), "\(counts)")
            let paths = ["/proc/sysrq-trigger", "/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches"].filter {
                FileManager.default.fileExists(atPath: $0)
            }
            let writer = try await worker.start(
                command: helperPath, arguments: ["try-open", "write"] + paths, owner: "tester")
            #expect(try await worker.waitUntilEnded(writer.id).exitCode == 0)
            let lines = String(decoding: try await worker.collectOutput(of: writer.id), as: UTF8.self)
                .split(separator: "\n")
            #expect(lines.map(String.init) == paths.map { "\($0) Read-only file system" })
        }
    }

    @Test("jobworker-init is a static executable: no dynamic loader, no Swift runtime")
    func initIsStatic() throws {
        let initPath = buildDirectory.appendingPathComponent("jobworker-init").path
        let data = try Data(contentsOf: URL(fileURLWithPath: initPath))
        // ELF64: e_phoff at 32, e_phentsize at 54, e_phnum at 56; PT_INTERP is type 3.
        func integer<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            data.subdata(in: offset..<offset + MemoryLayout<T>.size).withUnsafeBytes { $0.loadUnaligned(as: T.self) }
        }
        let headers = Int(integer(32, UInt64.self))
        let size = Int(integer(54, UInt16.self))
        let count = Int(integer(56, UInt16.self))
        let types = (0..<count).map { integer(headers + $0 * size, UInt32.self) }
        #expect(!types.contains(3))
        #expect(data.count < 2 << 20)
    }
}
