/// What a job's filesystem looks like when it runs in its own namespaces (the default).
///
/// The host's tree, every mount read-only, nosuid and nodev (like systemd's
/// `ProtectSystem=strict`); a fresh `/tmp` and `/dev/shm` (tmpfs, counted against the job's
/// memory limit); a fresh `/var/tmp` on disk (`scratchDirectory`); an empty read-only `/run`
/// and a minimal `/dev`. The server's state directory (output logs, records, scratch space),
/// its configuration directory, `/sys/fs/cgroup`, `/home`, `/root` and `hiddenPaths` are
/// covered by empty mounts. Only the operator changes this, never a request.
public struct JobFilesystem: Sendable, Hashable {
    /// false: jobs see the host's filesystem as the worker does (with a private `/proc` only):
    /// for debugging, or for jobs that must write to the host. Default: true.
    public var isPrivate = true

    /// The size cap of each of `/tmp` and `/dev/shm`, in bytes (their pages are also counted
    /// against the job's memory limit). Default: 256 MiB.
    public var temporaryBytes: UInt64 = 256 << 20

    /// Where the jobs' `/var/tmp` directories are made, one per job, removed when it ends: on the
    /// server's disk, under the job's IO limits. nil: `scratch/` in the state directory.
    public var scratchDirectory: String?

    /// More host paths no job may see (files or directories), beyond the server's own.
    public var hiddenPaths: [String] = []

    /// Host paths every job sees (shared data sets, tool chains), read-only unless `isWritable`.
    public var binds: [JobBind] = []

    public init(
        temporaryBytes: UInt64 = 256 << 20, scratchDirectory: String? = nil, hiddenPaths: [String] = [],
        binds: [JobBind] = []
    ) {
        (self.temporaryBytes, self.scratchDirectory) = (temporaryBytes, scratchDirectory)
        (self.hiddenPaths, self.binds) = (hiddenPaths, binds)
    }

    /// Host paths hidden from every job whatever the configuration: the places where other
    /// users' and the server's secrets live.
    static let alwaysHidden = ["/home", "/root", "/sys/fs/cgroup", "/etc/jobworker"]
}

/// A host path bound into every job.
public struct JobBind: Sendable, Hashable, CustomStringConvertible {
    public var hostPath: String
    /// Where jobs see it: an existing path of the same kind on the host's tree (the job's root
    /// is read-only, so no mount point can be made).
    public var jobPath: String
    public var isWritable: Bool

    public init(hostPath: String, jobPath: String? = nil, isWritable: Bool = false) {
        self.hostPath = hostPath
        self.jobPath = jobPath ?? hostPath
        self.isWritable = isWritable
    }

    /// `HOST[:JOB][:rw|:ro]`, as `jobworkerd --job-bind` takes it.
    public init?(parsing text: String) {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var writable = false
        if parts.count > 1, let last = parts.last, last == "rw" || last == "ro" {
            writable = last == "rw"
            parts.removeLast()
        }
        guard (1...2).contains(parts.count), parts.allSatisfy({ $0.hasPrefix("/") }) else { return nil }
        self.init(hostPath: parts[0], jobPath: parts.count == 2 ? parts[1] : nil, isWritable: writable)
    }

    public var description: String { "\(hostPath):\(jobPath):\(isWritable ? "rw" : "ro")" }
}

/// Which system calls a job may make.
public enum SystemCallFilter: Sendable, Hashable {
    /// What Docker's default profile denies an unprivileged container is refused with EPERM
    /// (kernel keyrings, BPF, perf, userfaultfd, modules, mounts, namespaces, clocks, io_uring,
    /// …; see `seccomp_profile.c`), and a foreign architecture's call kills the process.
    case standard
    /// `standard`, with io_uring allowed.
    case standardAllowingIOUring
    /// No filter: for debugging only.
    case off
}
