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

    /// What jobs may ask for and get by default, how many may run, how long they may take, and
    /// how much of their output is kept: the part a running worker can change (`Worker.update`).
    public var policy = WorkerPolicy()

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

    /// Upper bounds on a request's argument list, checked before anything is created.
    public var argumentLimits = ArgumentLimits()

    /// Whether jobs run in cgroups with resource limits (the default, and required in production).
    public var resourceControl = ResourceControl.cgroups

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

    /// How many changes a job watcher (`Worker.watch`) may fall behind before it is ended with
    /// `resourceExhausted`: a watcher that stops reading costs at most this many statuses.
    public var watchBacklog = 1024

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
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
