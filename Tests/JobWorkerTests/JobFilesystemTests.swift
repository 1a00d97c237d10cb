import Foundation
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// What a job sees of the host's filesystem, tried from inside real jobs as a hostile tenant
/// would: every write outside its own temporary space fails, the server's files and the hidden
/// host paths are not there, and what it leaves behind is gone when it ends.
@Suite(
    "Job filesystem",
    .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)), .timeLimit(.minutes(2)))
struct JobFilesystemTests {
    /// Runs `command` to its end and returns its output as lines.
    func runToEnd(_ worker: Worker, _ command: String, _ arguments: [String], limits: ResourceLimits = ResourceLimits())
        async throws -> (status: JobStatus, lines: [String])
    {
        let job = try await worker.start(command: command, arguments: arguments, owner: "tester", limits: limits)
        let ended = try await worker.waitUntilEnded(job.id)
        let text = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
        return (ended, text.split(separator: "\n").map(String.init))
    }

    @Test("a job can create files only in /tmp, /dev/shm and /var/tmp: elsewhere EROFS or EACCES")
    func readOnlyHost() async throws {
        // A directory anyone may write to on the host: only the job's read-only view refuses it.
        let open = try makeJobVisibleDirectory()
        defer { try? FileManager.default.removeItem(atPath: open) }
        chmod(open, 0o1777)
        try await withWorker { worker in
            let refused = [
                "/probe", "/etc/probe", "/usr/probe", "/var/probe", "/var/lib/probe", open + "/probe", "/run/probe",
                "/run/lock/probe", "/dev/probe", "/dev/pts/probe", "/proc/probe",
            ]
            let allowed = ["/tmp/probe", "/dev/shm/probe", "/var/tmp/probe"]
            let (_, lines) = try await runToEnd(worker, helperPath, ["try-create"] + refused + allowed)
            #expect(lines.count == refused.count + allowed.count)
            for line in lines {
                let path = String(line.prefix(while: { $0 != " " }))
                if allowed.contains(path) {
                    #expect(line == "\(path) ok")
                } else {
                    let refusedAsExpected =
                        line.hasSuffix(" Read-only file system") || line.hasSuffix(" Permission denied")
                        || line.hasSuffix(" No such file or directory") && path.hasPrefix("/proc")
                    #expect(refusedAsExpected, "\(line)")
                }
            }
            #expect(lines.contains("\(open)/probe Read-only file system"))
        }
    }

    @Test("the state directory, every log, the server's keys, cgroup files and host disks are out of reach")
    func hiddenPaths() async throws {
        // Outside /tmp, so that only the worker's hiding keeps them from the job.
        let visible = try makeJobVisibleDirectory()
        defer { try? FileManager.default.removeItem(atPath: visible) }
        let key = visible + "/server.key"
        try "-----BEGIN PRIVATE KEY-----\n".write(toFile: key, atomically: true, encoding: .utf8)
        chmod(key, 0o644)  // readable on the host: the hiding is what protects it
        let hiddenByOperator = visible + "/datasets"
        mkdir(hiddenByOperator, 0o755)
        FileManager.default.createFile(atPath: hiddenByOperator + "/secret", contents: Data("x".utf8))
        try await withWorker {
            $0.stateDirectory = visible + "/state"
            $0.serverPaths = [key]
            $0.jobFilesystem.hiddenPaths = [hiddenByOperator]
        } _: { worker in
            let other = try await worker.startHelper("pattern", "100")
            _ = try await worker.waitUntilEnded(other.id)
            let procs = try cgroupDirectories(of: worker).map { $0 + "/cgroup.procs" }
            try #require(!procs.isEmpty)
            let state = visible + "/state"
            let targets =
                [state + "/jobs.sqlite", state + "/output/\(other.id).log", hiddenByOperator + "/secret", "/dev/vda"]
                + procs
            let (_, readLines) = try await runToEnd(worker, helperPath, ["try-open", "read"] + targets + [key])
            #expect(readLines.count == targets.count + 1)
            for line in readLines.dropLast() {
                #expect(line.hasSuffix(" No such file or directory"), "\(line)")
            }
            // A hidden file is covered by an empty file that no job may open.
            #expect(readLines.last == "\(key) Permission denied")
            let (_, listed) = try await runToEnd(worker, helperPath, ["list", state, "/dev", "/run", "/sys/fs/cgroup"])
            #expect(listed.contains("\(state):"))
            #expect(listed.contains("/run: lock"))
            #expect(listed.contains("/sys/fs/cgroup:"))
            let devices = Set(
                listed.first { $0.hasPrefix("/dev:") }?.split(separator: " ").dropFirst().map(String.init) ?? [])
            #expect(
                devices == [
                    "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd", "stdin", "stdout",
                    "stderr",
                ])
        }
    }

    @Test("no unix socket of the host under /run or /tmp can be reached")
    func hostSockets() async throws {
        let name = "jobworker-test-\(JobID().shortDescription).sock"
        let paths = ["/run/" + name, "/tmp/" + name]
        var listeners: [Int32] = []
        defer {
            for listener in listeners { close(listener) }
            for path in paths { unlink(path) }
        }
        for path in paths {
            let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            listeners.append(listener)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                _ = path.utf8CString.withUnsafeBytes { raw.copyMemory(from: $0) }
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            try #require(bound == 0 && listen(listener, 4) == 0)
            chmod(path, 0o777)  // anyone on the host may connect: only the job's view refuses it
        }
        try await withWorker { worker in
            let (_, lines) = try await runToEnd(worker, helperPath, ["unix-connect"] + paths)
            #expect(lines == paths.map { "\($0) No such file or directory" })
        }
    }

    @Test("jobs that need none of this still work: /tmp, /var/tmp, /etc/os-release, python3 and /dev/null")
    func ordinaryJobsWork() async throws {
        try await withWorker { worker in
            let script = """
                set -e
                echo a > /tmp/a && cat /tmp/a
                echo b > /var/tmp/b && cat /var/tmp/b
                grep -q '^ID=' /etc/os-release
                echo discarded > /dev/null
                python3 -c 'import tempfile, os; f = tempfile.NamedTemporaryFile(); f.write(b"x"); f.flush(); print(os.path.getsize(f.name))'
                """
            let (status, lines) = try await runToEnd(worker, "/bin/sh", ["-c", script])
            #expect(status.exitCode == 0, "\(lines)")
            #expect(lines == ["a", "b", "1"])
        }
    }

    @Test(
        "what a job leaves in /tmp, /var/tmp and /dev/shm is gone when it ends, on the host too, even for the next job of its uid"
    )
    func temporarySpaceIsPrivate() async throws {
        let only: UInt32 = 1_900_400_000
        try await withWorker {
            $0.jobUsers = .pool(only...only)  // the next job gets the same uid
        } _: { worker in
            let first = try await worker.start(
                command: "/bin/sh",
                arguments: ["-c", "echo x > /tmp/left && echo x > /var/tmp/left && echo x > /dev/shm/left"],
                owner: "alice")
            _ = try await worker.waitUntilEnded(first.id)
            try await worker.waitUntilRecorded(first.id)
            let scratch = worker.configuration.stateDirectory + "/scratch"
            #expect(!FileManager.default.fileExists(atPath: scratch + "/\(first.id)"))
            let (_, listed) = try await runToEnd(worker, helperPath, ["list", "/tmp", "/var/tmp", "/dev/shm"])
            #expect(listed == ["/tmp:", "/var/tmp:", "/dev/shm:"])
        }
    }

    @Test("operator binds: read-only by default, writable with rw; the job sees them where they are bound")
    func binds() async throws {
        let shared = try makeJobVisibleDirectory()
        let writable = try makeJobVisibleDirectory()
        let target = try makeJobVisibleDirectory()
        defer { for path in [shared, writable, target] { try? FileManager.default.removeItem(atPath: path) } }
        try "data\n".write(toFile: shared + "/set", atomically: true, encoding: .utf8)
        chmod(shared + "/set", 0o644)
        chmod(writable, 0o1777)
        try await withWorker {
            $0.jobFilesystem.binds = [
                JobBind(hostPath: shared, jobPath: target), JobBind(hostPath: writable, isWritable: true),
            ]
        } _: { worker in
            let (status, lines) = try await runToEnd(
                worker, "/bin/sh",
                ["-c", "cat \(target)/set; \(helperPath) try-create \(target)/new \(writable)/new"])
            #expect(status.exitCode == 0)
            #expect(lines == ["data", "\(target)/new Read-only file system", "\(writable)/new ok"])
        }
        #expect(throws: JobWorkerError.self) {
            _ = try FilesystemPlan(
                JobFilesystem(binds: [JobBind(hostPath: shared, jobPath: "/no/such/place")]), serverPaths: [])
        }
    }

    @Test("100 MB in /dev/shm is counted against the job and freed when it ends")
    func sharedMemoryFreed() async throws {
        try await withWorker { worker in
            await worker.inits?.waitUntilParked(1)  // a job cgroup to find the parent by
            // The parent of the job cgroups, in the memory hierarchy (v1) or the unified one (v2).
            let parent = try #require(
                try cgroupDirectories(of: worker).first { worker.cgroupMode == .v2 || $0.contains("/memory/") }.map {
                    URL(fileURLWithPath: $0).deletingLastPathComponent().path
                })
            let usageFile = parent + (worker.cgroupMode == .v2 ? "/memory.current" : "/memory.usage_in_bytes")
            func shmem() throws -> Int {
                let info = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
                let line = try #require(info.split(separator: "\n").first { $0.hasPrefix("Shmem:") })
                return Int(line.split(separator: " ")[1])! * 1024
            }
            func parentUsage() throws -> Int {
                Int(
                    try String(contentsOfFile: usageFile, encoding: .utf8).trimmingCharacters(
                        in: .whitespacesAndNewlines))!
            }
            let (shmemBefore, usageBefore) = (try shmem(), try parentUsage())
            let size = 100 << 20
            let (status, lines) = try await runToEnd(worker, helperPath, ["write-file", "/dev/shm/big", "\(size)"])
            #expect(lines == ["written"])
            #expect(status.usage.memoryPeakBytes >= UInt64(size), "\(status.usage)")
            #expect(abs(try shmem() - shmemBefore) < 5 << 20)
            #expect(abs(try parentUsage() - usageBefore) < 5 << 20)

            // Past the job's memory limit, the same write ends the job.
            let (limited, _) = try await runToEnd(
                worker, helperPath, ["write-file", "/dev/shm/big", "\(size)"],
                limits: ResourceLimits(memoryBytes: 64 << 20))
            #expect(limited.state == .oomKilled, "\(limited)")
        }
    }

    @Test("200 MB written to /var/tmp lands on the disk under the job's IO limit, and is gone after")
    func scratchOnDisk() async throws {
        try await withWorker { worker in
            let size = 200 << 20
            let (status, _) = try await runToEnd(
                worker, helperPath, ["direct-write", "/var/tmp/big", "\(size)"],
                limits: ResourceLimits(ioWriteBytesPerSecond: 100 << 20))
            #expect(status.exitCode == 0)
            #expect(status.usage.ioWriteBytes >= UInt64(size))
            let seconds = try #require(status.endedAt).timeIntervalSince(status.startedAt)
            #expect(seconds >= 1.8, "200 MB at 100 MB/s took \(seconds) s")
            try await worker.waitUntilRecorded(status.id)
            let scratch = worker.configuration.stateDirectory + "/scratch/\(status.id)"
            #expect(!FileManager.default.fileExists(atPath: scratch))
        }
    }
}
