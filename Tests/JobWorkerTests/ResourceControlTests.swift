import Foundation
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// Limits enforced by the host's real cgroups (v1 here, v2 wherever it is the host's mode).
@Suite(
    "Resource control on the host's cgroups",
    .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)),
    .timeLimit(.minutes(2)))
struct ResourceControlTests {
    @Test("the job is in its cgroup before its first instruction")
    func placedBeforeExec() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("print-cgroup")
            _ = try await worker.waitUntilEnded(job.id)
            let text = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            let lines = text.split(separator: "\n")
            // v2: the single "0::" line names the job's cgroup; v1: every hierarchy the worker uses.
            let isV2 = worker.resourceControlSummary.hasPrefix("cgroup v2")
            let expected = isV2 ? ["0::"] : ["cpu", "cpuacct", "memory", "blkio", "pids", "freezer"].map { ":\($0):" }
            for marker in expected {
                let line = lines.first { $0.contains(marker) && (marker == "0::" ? $0.hasPrefix(marker) : true) }
                #expect(
                    line?.hasSuffix("/\(worker.configuration.cgroupParentName)/\(job.id)") == true,
                    "\(marker): \(line ?? "")")
            }
        }
    }

    @Test("a job allocating past its memory limit is OOM-killed, with its peak near the limit")
    func outOfMemory() async throws {
        try await withWorker { worker in
            let limit: UInt64 = 64 << 20
            let job = try await worker.startHelper(
                "allocate", "\(512 << 20)", limits: ResourceLimits(memoryBytes: limit))
            #expect(job.limits.memoryBytes == limit)
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.state == .oomKilled)
            #expect(ended.termination == .signaled(SIGKILL))
            #expect(ended.usage.memoryPeakBytes > limit * 8 / 10)
            #expect(ended.usage.memoryPeakBytes <= limit + (1 << 20))
        }
    }

    @Test("a job within its memory limit is not OOM-killed")
    func withinMemory() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper(
                "allocate", "\(32 << 20)", limits: ResourceLimits(memoryBytes: 128 << 20))
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.state == .exited)
            #expect(ended.usage.memoryPeakBytes >= 32 << 20)
        }
    }

    @Test("a memory limit above the default is raised over the limits a parked init's cgroup starts with")
    func memoryAboveDefault() async throws {
        try await withWorker { worker in
            // The default is 1 GiB, preset on parked inits' cgroups; v1 with swap accounting
            // refuses a memory limit above memory plus swap, so the raise must order its writes.
            let job = try await worker.startHelper(
                "allocate", "\(1280 << 20)", limits: ResourceLimits(memoryBytes: 2 << 30))
            #expect(job.limits.memoryBytes == 2 << 30)
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.state == .exited)
            #expect(ended.usage.memoryPeakBytes >= 1280 << 20)
        }
    }

    @Test("where the host accounts swap, a job's memory plus swap is held to its memory limit")
    func swapHeldToMemoryLimit() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("sleep", limits: ResourceLimits(memoryBytes: 128 << 20))
            // The job's cgroup, from its init's own view of the hierarchy.
            let isV2 = worker.resourceControlSummary.hasPrefix("cgroup v2")
            let cgroups = try String(contentsOfFile: "/proc/\(job.pid)/cgroup", encoding: .utf8)
            let marker = isV2 ? "0::" : ":memory:"
            let line = try #require(cgroups.split(separator: "\n").first { $0.contains(marker) })
            let path = String(line[line.range(of: marker)!.upperBound...])
            let file =
                isV2
                ? "/sys/fs/cgroup\(path)/memory.swap.max" : "/sys/fs/cgroup/memory\(path)/memory.memsw.limit_in_bytes"
            let expected = isV2 ? "0" : "\(128 << 20)"
            if FileManager.default.fileExists(atPath: file) {
                let value = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(
                    in: .whitespacesAndNewlines)
                #expect(value == expected, "\(file)")
            } else {
                print("swap limit not checked: the host has no \(file) (no swap accounting)")
                #expect(!Privileges.isCI, "CI hosts account swap: \(file) is missing")
            }
            _ = try await worker.stop(job.id, gracePeriod: .zero)
        }
    }

    @Test("a busy loop under 200 millicores for 3 s uses 0.2 ± 0.05 CPU-seconds per second")
    func cpuLimit() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("spin", "3", limits: ResourceLimits(cpuMillis: 200))
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.state == .exited)
            let wall = try #require(ended.endedAt).timeIntervalSince(ended.startedAt)
            let rate = Double(ended.usage.cpuMicroseconds) / 1e6 / wall
            #expect(abs(rate - 0.2) <= 0.05, "used \(rate) CPU-seconds per second over \(wall) s")
        }
    }

    @Test("direct-IO writes of 20 MB under a 5 MB/s limit take at least 3 s; unlimited, far less")
    func ioLimit() async throws {
        try await withWorker { worker in
            // Each job's own /var/tmp, on the disk of the state directory.
            let directory = "/var/tmp"
            let size = 20 << 20
            let limited = try await worker.startHelper(
                "direct-write", directory + "/limited", "\(size)",
                limits: ResourceLimits(ioWriteBytesPerSecond: 5 << 20))
            let unlimited = try await worker.startHelper("direct-write", directory + "/unlimited", "\(size)")
            let slow = try await worker.waitUntilEnded(limited.id)
            let fast = try await worker.waitUntilEnded(unlimited.id)
            #expect(slow.exitCode == 0 && fast.exitCode == 0)
            let slowSeconds = try #require(slow.endedAt).timeIntervalSince(slow.startedAt)
            let fastSeconds = try #require(fast.endedAt).timeIntervalSince(fast.startedAt)
            #expect(slowSeconds >= 3, "limited: \(slowSeconds) s")
            #expect(fastSeconds < slowSeconds / 3, "unlimited: \(fastSeconds) s, limited: \(slowSeconds) s")
            #expect(slow.usage.ioWriteBytes >= UInt64(size))
        }
    }

    @Test("a fork bomb under a 50-process limit is contained; the worker stays responsive; stop ends it")
    func forkBomb() async throws {
        try await withWorker { worker in
            let bomb = try await worker.startHelper("fork-bomb", limits: ResourceLimits(maxProcesses: 50))
            _ = try await worker.waitForOutput(of: bomb.id, containing: "ready")
            // Responsive: another job starts, runs and reports while the bomb is at its limit.
            let other = try await worker.startHelper("echo-args", "still here")
            #expect(try await worker.waitUntilEnded(other.id).exitCode == 0)
            #expect(try worker.status(of: bomb.id).state == .running)
            let stopped = try await worker.stop(bomb.id, gracePeriod: .milliseconds(200))
            #expect(stopped.state == .stopped)
            #expect(try !cgroupDirectories(of: worker).contains { $0.hasSuffix("/\(bomb.id)") })
        }
    }

    @Test("stop kills a process that left the job's process group")
    func escapedProcess() async throws {
        try await withWorker { worker in
            let marker = makeMarker()
            let job = try await worker.startHelper("escape", marker)
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            let processes = hostProcesses(withArgument: marker)
            #expect(processes.count >= 2)
            let stopped = try await worker.stop(job.id, gracePeriod: .seconds(5))
            #expect(stopped.state == .stopped)
            // The job ended once its cgroup was empty: the escaped process is already gone.
            #expect(hostProcesses(withArgument: marker).isEmpty)
        }
    }

    @Test("limits above a ceiling are refused before anything is created")
    func ceilingRefused() async throws {
        try await withWorker { configuration in
            configuration.policy.resourcePolicy.ceilings.memoryBytes = 1 << 30
        } _: { worker in
            await #expect(throws: JobWorkerError(.invalidArgument, "memory limit 2Gi exceeds the server ceiling 1Gi")) {
                try await worker.startHelper("exit", "0", limits: ResourceLimits(memoryBytes: 2 << 30))
            }
            #expect(worker.list().isEmpty)
            let applied = try await worker.startHelper("exit", "0").limits
            #expect(applied.memoryBytes == 1 << 30)
            #expect(applied.cpuMillis == 1000)
            #expect(applied.maxProcesses == 1024)
        }
    }

    @Test("a configured IO device that does not exist, or is not a whole disk, is a startup error")
    func missingDevice() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.cgroupParentName = "jobworker-test-\(JobID().shortDescription)"
        configuration.ioDevices = ["/dev/jobworker-no-such-disk"]
        await #expect(throws: JobWorkerError(.invalidArgument, "IO device /dev/jobworker-no-such-disk does not exist"))
        {
            _ = try await Worker(configuration: configuration)
        }
        configuration.ioDevices = ["/dev/null"]
        await #expect(throws: JobWorkerError(.invalidArgument, "IO device /dev/null is not a block device")) {
            _ = try await Worker(configuration: configuration)
        }
    }

    @Test("usage is live while the job runs")
    func liveUsage() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("trap-term")
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            let running = try worker.status(of: job.id)
            #expect(running.state == .running)
            #expect(running.usage.memoryPeakBytes > 0)
            #expect(running.usage.cpuMicroseconds > 0)
            _ = try await worker.stop(job.id)
        }
    }

    @Test("100 jobs later, no cgroup directory of ours remains")
    func noCgroupLeak() async throws {
        var parked: [String] = []
        let worker = try await withWorker {
            $0.liftOwnerQuotas()
        } _: { worker in
            let ids = try await withThrowingTaskGroup(of: JobID.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let job = try await worker.startHelper(
                            index % 2 == 0 ? "exit" : "background-child", "0",
                            limits: ResourceLimits(memoryBytes: 64 << 20))
                        _ = try await worker.waitUntilEnded(job.id)
                        return job.id
                    }
                }
                return try await group.reduce(into: Set<JobID>()) { $0.insert($1) }
            }
            // What remains belongs to inits parked for future jobs, never to one of these.
            parked = try cgroupDirectories(of: worker)
            #expect(!parked.contains { directory in ids.contains { directory.hasSuffix("/\($0)") } })
            return worker
        }
        // Once the worker is shut down, nothing at all.
        #expect(try cgroupDirectories(of: worker).isEmpty)
        #expect(parked.count <= 6 * worker.configuration.prestartedInits)
    }

    @Test("leftover job cgroups of a previous run are killed and removed at startup")
    func leftoversRemoved() async throws {
        let parent = "jobworker-test-\(JobID().shortDescription)"
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.cgroupParentName = parent
        // A first worker starts a job and "crashes": it is never shut down. (Without parked inits:
        // in one test process they would stay unreaped children of ours, which a real crash does
        // not leave behind.)
        configuration.prestartedInits = 0
        let first = try await Worker(configuration: configuration)
        configuration.prestartedInits = 4
        let job = try await first.startHelper("sleep")
        _ = try await first.waitForOutput(of: job.id, containing: "ready")
        #expect(try cgroupDirectories(of: first).contains { $0.hasSuffix("/\(job.id)") })

        // What the kernel does to a dead worker's claim on the cgroup parent. Its state directory
        // stays locked, so the second worker gets another one under the same cgroup parent,
        // which is what its cleanup looks at.
        first.cgroups?.parentLock.release()
        let secondDirectory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: secondDirectory) }
        configuration.stateDirectory = secondDirectory
        let second = try await Worker(configuration: configuration)
        #expect(try !cgroupDirectories(of: second).contains { $0.hasSuffix("/\(job.id)") })
        #expect(waitForProcessToEnd(job.pid, timeout: .seconds(5)))
        await second.shutdown(gracePeriod: .zero)
        await first.shutdown(gracePeriod: .zero)
    }

    @Test("a second worker on a cgroup parent in use is refused, and the first one's jobs go on")
    func cgroupParentInUse() async throws {
        let parent = "jobworker-test-\(JobID().shortDescription)"
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.cgroupParentName = parent
        let first = try await Worker(configuration: configuration)
        let job = try await first.startHelper("sleep")
        _ = try await first.waitForOutput(of: job.id, containing: "ready")

        let secondDirectory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: secondDirectory) }
        configuration.stateDirectory = secondDirectory
        await #expect {
            _ = try await Worker(configuration: configuration)
        } throws: { error in
            (error as? JobWorkerError)?.message.contains("in use by another worker") == true
        }
        #expect(try first.status(of: job.id).state == .running)
        #expect(try cgroupDirectories(of: first).contains { $0.hasSuffix("/\(job.id)") })
        // Another process is refused too: the refusal here did not drop the first worker's lock.
        let lockFiles = try FileManager.default.contentsOfDirectory(atPath: "/run/jobworker").filter {
            $0.hasPrefix("cgroup-") && $0.contains("%2F\(parent).lock")
        }
        #expect(lockFiles.count == 1, "\(lockFiles)")
        for file in lockFiles {
            #expect(try lockAttempt(on: "/run/jobworker/" + file) == "Resource temporarily unavailable")
        }

        // Once the first worker has shut down, the parent is free for the next one.
        await first.shutdown(gracePeriod: .zero)
        let second = try await Worker(configuration: configuration)
        await second.shutdown(gracePeriod: .zero)
    }
}

/// Job cgroup directories under the worker's parent cgroups, in every hierarchy.
func cgroupDirectories(of worker: Worker) throws -> [String] {
    let parent = worker.configuration.cgroupParentName
    let ownPaths = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8).split(separator: "\n")
    var found: [String] = []
    for line in ownPaths {
        let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { continue }
        let controllers = fields[1].split(separator: ",").map(String.init)
        let mount = fields[1].isEmpty ? "/sys/fs/cgroup" : "/sys/fs/cgroup/" + (controllers.first ?? "")
        let directory = mount + (fields[2] == "/" ? "" : String(fields[2])) + "/" + parent
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        found += entries.filter { JobID($0) != nil }.map { directory + "/" + $0 }
    }
    return found
}
