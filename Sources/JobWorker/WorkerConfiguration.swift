import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// How a `Worker` runs its jobs. The defaults suit a server running as root.
public struct WorkerConfiguration: Sendable {
    /// Where the worker reports its setup (cgroup mode and controllers, isolation, leftovers it
    /// removed) and host failures. Never job output.
    public var logger = Logger(label: "jobworker")

    /// Where the worker's own background work runs (a job's cgroup teardown after its end, the
    /// retention sweeps): nil for Swift's default executor. A server whose tasks run on its
    /// network event loops gives an executor of blocking-capable threads here, so that these
    /// file-system and cgroup calls never hold an event loop.
    public var backgroundExecutor: (any TaskExecutor)?

    /// Where the worker keeps everything: job output logs, job records, exit records. Created
    /// (mode 0700) if missing; one worker per directory.
    public var stateDirectory: String

    /// The time limit of a job whose start gives none (nil: none), and the longest one a start
    /// may give (nil: no bound).
    public var defaultTimeout: Duration?
    public var maximumTimeout: Duration?

    /// How long `stop` waits after SIGTERM before it sends SIGKILL, when the caller gives none.
    public var defaultGracePeriod: Duration = .seconds(10)

    /// The complete environment of every job. The worker's own environment never reaches a job:
    /// it may hold secrets, and jobs should not depend on how the server was started.
    public var jobEnvironment: [String: String] = [
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/",
        "LANG": "C.UTF-8",
    ]

    /// The working directory of every job.
    public var jobWorkingDirectory: String = "/"

    /// The users jobs run as (see `JobUser` for why not root): by default a user of its own per
    /// running job, from `JobUsers.defaultRange`.
    public var jobUsers = JobUsers.pool(JobUsers.defaultRange)

    /// How many jobs may run at once; a start beyond it fails with `.resourceExhausted`.
    public var maximumRunningJobs = 256

    /// How many jobs one owner may run at once (an administrator's own jobs count too); a start
    /// beyond it fails with `.resourceExhausted`, whatever other owners run. nil: no bound.
    public var maximumRunningJobsPerOwner: Int? = 64

    /// How fast one owner may start jobs; a start beyond it fails with `.resourceExhausted`,
    /// saying when to try again. nil: no bound.
    public var startRatePerOwner: StartRate? = StartRate(perSecond: 32, burst: 64)

    /// The most output a job's log keeps (default 1 GiB): past it the job keeps running, further
    /// bytes are dropped and counted (`JobStatus.outputDroppedBytes`), so that no job fills the
    /// state directory's disk. Applies to jobs with an init (isolation); nil: no cap.
    public var maximumOutputBytes: UInt64? = 1 << 30

    /// Upper bounds on a request's argument list, checked before anything is created.
    public var argumentLimits = ArgumentLimits()

    /// Whether jobs run in cgroups with resource limits (the default, and required in production).
    public var resourceControl = ResourceControl.cgroups

    /// Default and maximum limits for jobs; by default the ceilings are the host's capacity.
    public var resourcePolicy = ResourcePolicy.hostSized()

    /// What all jobs together may use (their parent cgroups' limits). nil: most of the host,
    /// leaving room for the server (`SharedJobLimits.host()`).
    public var sharedJobLimits: SharedJobLimits?

    /// Block devices (e.g. "/dev/vda") whose IO the limits apply to. nil: the whole disks backing
    /// `/` and the state directory. A device that does not exist is a startup error.
    public var ioDevices: [String]?

    /// Whether jobs run in their own PID, mount, network, UTS and IPC namespaces, with our init as
    /// PID 1 (the default). Only the operator can switch it off.
    public var isolation = Isolation.namespaces

    /// What jobs see of the host's filesystem, with isolation (see `JobFilesystem`).
    public var jobFilesystem = JobFilesystem()

    /// The system calls jobs may make (see `SystemCallFilter`).
    public var systemCallFilter = SystemCallFilter.standard

    /// Files of the server that no job may see, beyond the state directory: its private key,
    /// certificates and configuration (the API server fills these in).
    public var serverPaths: [String] = []

    /// The jobworker-init program. nil: `jobworker-init` next to the running executable.
    public var initPath: String?

    /// How many inits to keep started, in fresh namespaces, ahead of jobs. Starting them is most
    /// of the cost of an isolated start; 0 starts each one when its job starts.
    public var prestartedInits = 4

    /// The name of the cgroup, below the worker's own, that holds the job cgroups. The worker owns
    /// it: whatever it finds there at startup is a leftover of a previous run and is removed.
    public var cgroupParentName = "jobworker"

    /// When finished jobs, their records and their output are deleted.
    public var retention = RetentionPolicy()

    /// How many changes a job watcher (`Worker.watch`) may fall behind before it is ended with
    /// `resourceExhausted`: a watcher that stops reading costs at most this many statuses.
    public var watchBacklog = 1024

    /// The free space the state directory's file system must keep: a start below it fails with
    /// `.resourceExhausted`, so that a full disk is a clear refusal rather than failing writes
    /// of records and output. nil: no floor.
    public var minimumFreeDisk: DiskSpaceFloor? = DiskSpaceFloor()

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }
}

/// How long finished jobs are kept. A job is deleted — record and output — once it ended more
/// than `maximumAge` ago, or, oldest first among its owner's, while the disk space its owner's
/// finished jobs' output takes exceeds `maximumOutputBytes` (a pool per owner, counted in
/// allocated blocks). A running job is never deleted. nil: no bound.
public struct RetentionPolicy: Sendable, Hashable {
    /// Default: 7 days.
    public var maximumAge: Duration? = .seconds(7 * 86_400)
    /// Default: 10 GiB.
    public var maximumOutputBytes: UInt64? = 10 << 30

    public init(maximumAge: Duration? = .seconds(7 * 86_400), maximumOutputBytes: UInt64? = 10 << 30) {
        self.maximumAge = maximumAge
        self.maximumOutputBytes = maximumOutputBytes
    }
}

/// Bounds on the size of a start request's command line.
///
/// The kernel refuses a single string over 128 KiB (MAX_ARG_STRLEN) and arguments and
/// environment together over ARG_MAX (a quarter of the stack limit, at most 6 MiB); refusing
/// earlier gives a clear message instead of E2BIG from a process that already exists.
public struct ArgumentLimits: Sendable, Hashable {
    /// Largest number of arguments (argv[0] excluded).
    public var maximumCount = 4096
    /// Largest single argument or command, in bytes.
    public var maximumLength = 128 * 1024 - 1
    /// Largest total of command and arguments, in bytes, counting one terminator each: half of
    /// this host's ARG_MAX (1 MiB with the usual 8 MiB stack), leaving the other half to the
    /// environment, the argument pointers and the path of the program.
    public var maximumTotalBytes = ArgumentLimits.hostTotalBytes

    public init() {}

    /// Half of ARG_MAX as the worker's stack limit gives it (capped at the kernel's 6 MiB), and
    /// at least 64 KiB.
    public static var hostTotalBytes: Int {
        let argMax = min(max(sysconf(Int32(_SC_ARG_MAX)), 128 * 1024), 6 << 20)
        return max(argMax / 2, 64 * 1024)
    }
}

/// Whether jobs run under cgroup resource control.
public enum ResourceControl: Sendable, Hashable {
    /// Detect cgroup v2 or v1 and require it: a missing controller is a startup error.
    case cgroups
    /// No cgroups: jobs run without limits and requests for limits are refused. For development
    /// as an unprivileged user only.
    case disabled
}

/// How jobs are isolated from the host and from each other.
public enum Isolation: Sendable, Hashable {
    /// New PID, mount, network, UTS and IPC namespaces, with jobworker-init as PID 1: the job sees
    /// only its own processes, only a loopback interface, its own host name and IPC objects, and
    /// its mounts stay its own.
    case namespaces
    /// The job shares the worker's namespaces. For development without root only.
    case none
}

/// How much of a file system must stay free: the smaller of `bytes` and `fraction` of its size
/// (default: 1 GiB or 5 %, whichever is smaller, so that a small disk is not refused outright).
public struct DiskSpaceFloor: Sendable, Hashable {
    public var bytes: UInt64
    public var fraction: Double

    public init(bytes: UInt64 = 1 << 30, fraction: Double = 0.05) {
        self.bytes = bytes
        self.fraction = fraction
    }

    /// The floor on a file system of `totalBytes`.
    public func floor(ofTotal totalBytes: UInt64) -> UInt64 {
        min(bytes, UInt64(Double(totalBytes) * fraction))
    }
}
