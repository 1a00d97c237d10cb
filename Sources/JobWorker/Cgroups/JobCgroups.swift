import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Which cgroup implementation the host has, and so which backend the worker uses.
public enum CgroupMode: String, Sendable {
    /// One hierarchy per controller (legacy and hybrid hosts).
    case v1
    /// The unified hierarchy.
    case v2
}

/// Every job cgroup of one worker, from creation to removal: the only code that creates or
/// removes cgroup directories.
///
/// Built once per worker with the host's backend, the event monitor (cgroup v2 reports an
/// emptied cgroup by an inotify event) and the claim on the parent cgroups, which it keeps until
/// `shutdown`.
final class JobCgroups: Sendable {
    let backend: any CgroupBackend
    private let monitor: EventMonitor
    /// The claim on the parent cgroups: released by `shutdown`, or by the kernel at the end of
    /// the process.
    let parentLock: CgroupParentLock

    /// The backend in use.
    var mode: CgroupMode { backend.mode }
    /// What all jobs together may use.
    let shared: SharedJobLimits

    /// Which mode, controllers and directories, for the startup log.
    var summary: String {
        backend.summary
            + "; all jobs together: \(shared.memoryBytes >> 20) MiB memory, \(shared.maxProcesses) processes"
    }

    /// Chooses the host's backend, prepares the parent cgroups and claims them; fails, saying
    /// how to fix the host, if a required controller is missing or another worker holds them.
    init(configuration: WorkerConfiguration, monitor: EventMonitor) throws(JobWorkerError) {
        let backend = try makeCgroupBackend(configuration)
        do {
            parentLock = try CgroupParentLock(backend.parentDirectories)
        } catch {
            Self.removeParents(of: backend)
            throw error
        }
        shared = configuration.sharedJobLimits ?? SharedJobLimits.host()
        do {
            try backend.limitParents(shared)
        } catch {
            parentLock.release()
            Self.removeParents(of: backend)
            throw error
        }
        self.backend = backend
        self.monitor = monitor
    }

    /// Creates a job's cgroup with its final `limits`, in one step: on failure nothing is left.
    func create(named name: String, limits: ResourceLimits) throws(JobWorkerError) -> any JobCgroup {
        try backend.createCgroup(named: name, limits: limits)
    }

    /// Ends a job's cgroup for good: kills what is left, waits for it to empty, reads the final
    /// usage and OOM count, and removes it.
    func tearDown(_ cgroup: any JobCgroup) async -> (usage: ResourceUsage, oomKills: UInt64) {
        // Usually the job's own process was the last one and there is nothing left to kill.
        if !cgroup.isEmpty {
            cgroup.killAll()
            await cgroup.waitUntilEmpty(monitor: monitor)
        }
        let final = (cgroup.usage(), cgroup.oomKills())
        await cgroup.remove()
        return final
    }

    /// Removes a cgroup whose processes are gone (or about to be), retrying while the kernel
    /// still reports it busy.
    func remove(_ cgroup: any JobCgroup) async {
        await cgroup.remove()
    }

    /// `remove` for callers that cannot wait: a cgroup the kernel still reports busy is left to
    /// the next start of the worker, which removes leftovers.
    func removeNow(_ cgroup: any JobCgroup) {
        for directory in cgroup.directories { rmdir(directory) }
    }

    /// Kills and removes every job cgroup a previous run left under the parents, but those
    /// named in `keeping` (adopted jobs'). Returns how many it removed.
    func removeLeftovers(keeping: Set<String>) async -> Int {
        let names = Set(
            backend.parentDirectories.flatMap { directory in
                ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
                    var info = stat()
                    return stat(directory + "/" + $0, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
                }
            }
        ).subtracting(keeping)
        for name in names {
            _ = await tearDown(backend.existingCgroup(named: name))
        }
        return names.count
    }

    /// Removes the parent cgroups (if no job cgroup is left in them) and lets them go, for the
    /// next worker.
    func shutdown() {
        Self.removeParents(of: backend)
        parentLock.release()
    }

    private static func removeParents(of backend: any CgroupBackend) {
        for directory in backend.parentDirectories { rmdir(directory) }
    }
}

/// What all jobs together may use: the limits of their parent cgroups, so that no number of jobs
/// can take the whole host from the server and everything else on it.
public struct SharedJobLimits: Sendable, Hashable {
    public var memoryBytes: UInt64
    public var maxProcesses: UInt32

    public init(memoryBytes: UInt64, maxProcesses: UInt32) {
        self.memoryBytes = memoryBytes
        self.maxProcesses = maxProcesses
    }

    /// The default: most of the host, leaving room for the server — memory minus the larger of
    /// 10 % and 512 MiB, and the kernel's `pid_max` minus the larger of 10 % and 1,024.
    public static func host(memoryTotal: UInt64? = hostMemoryTotal(), pidMax: UInt32? = hostPidMax())
        -> SharedJobLimits
    {
        let memory = memoryTotal ?? (8 << 30)
        let pids = pidMax ?? 32768
        let mebibyte: UInt64 = 1 << 20  // whole MiB: the kernel rounds limits to pages anyway
        return SharedJobLimits(
            memoryBytes: (memory - min(memory / 2, max(memory / 10, 512 << 20))) / mebibyte * mebibyte,
            maxProcesses: pids - min(pids / 2, max(pids / 10, 1024)))
    }

    /// The kernel's `pid_max`.
    public static func hostPidMax() -> UInt32? {
        CgroupFiles.number("/proc/sys/kernel/pid_max").map { UInt32(clamping: $0) }
    }

    /// MemTotal from /proc/meminfo, in bytes.
    public static func hostMemoryTotal() -> UInt64? {
        // "MemTotal:       24683784 kB"
        for line in (CgroupFiles.read("/proc/meminfo") ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 3, fields[0] == "MemTotal:", let kibibytes = UInt64(fields[1]) {
                return kibibytes * 1024
            }
        }
        return nil
    }
}
