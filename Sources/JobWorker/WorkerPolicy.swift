import Synchronization

/// The settings of a worker that may change while it runs (`Worker.update(_:)`, at a server's
/// reload): the limits jobs get and may ask for, how many may run, how long they may take, how
/// much of their output is kept and for how long. A start reads them once, when it begins; jobs
/// already running keep what they started with.
public struct WorkerPolicy: Sendable, Hashable {
    /// The time limit of a job whose start gives none (nil: none), and the longest one a start
    /// may give (nil: no bound).
    public var defaultTimeout: Duration?
    public var maximumTimeout: Duration?

    /// How long `stop` waits after SIGTERM before it sends SIGKILL, when the caller gives none.
    public var defaultGracePeriod: Duration = .seconds(10)

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

    /// Default and maximum limits for jobs; by default the ceilings are the host's capacity.
    public var resourcePolicy = ResourcePolicy.hostSized()

    /// When finished jobs, their records and their output are deleted.
    public var retention = RetentionPolicy()

    /// The free space the state directory's file system must keep: a start below it fails with
    /// `.resourceExhausted`, so that a full disk is a clear refusal rather than failing writes
    /// of records and output. nil: no floor.
    public var minimumFreeDisk: DiskSpaceFloor? = DiskSpaceFloor()

    public init() {}
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

/// The worker's policy now, shared by the parts that read it at each start (admission, the
/// launcher, retention, the init pool) and replaced as a whole by `Worker.update(_:)`.
final class CurrentPolicy: Sendable {
    private let policy: Mutex<WorkerPolicy>

    init(_ policy: WorkerPolicy) {
        self.policy = Mutex(policy)
    }

    var value: WorkerPolicy {
        get { policy.withLock { $0 } }
        set { policy.withLock { $0 = newValue } }
    }
}
