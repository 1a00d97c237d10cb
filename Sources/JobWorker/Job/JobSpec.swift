#if canImport(Glibc)
    import Glibc
#endif

/// What a start asks for: the program and its command line, the environment and working
/// directory it starts with, and its limits. A value, so that each new thing a job can be given
/// is a field here rather than another parameter of `Worker.start`.
public struct JobSpec: Sendable, Hashable {
    /// An absolute path, or a name looked up in the job's PATH (after `environment`).
    public var command: String
    /// The arguments, verbatim, without argv[0]; never through a shell.
    public var arguments: [String]
    /// Added to the worker's clean job environment (`WorkerConfiguration.jobEnvironment`); a
    /// name given here replaces the worker's value, PATH included. Names match
    /// `[A-Za-z_][A-Za-z0-9_]*`; at most 256 entries and 128 KiB in all (`JobSpecValidation`).
    public var environment: [String: String]
    /// An absolute path in the job's view of the filesystem; nil: the worker's default ("/").
    public var workingDirectory: String?
    /// 0 = the policy's default for that limit.
    public var limits: ResourceLimits
    /// Bytes fed to the job's standard input, then end-of-file (at most 1 MiB); nil: /dev/null.
    public var standardInput: [UInt8]?
    /// For people and for filtering; not unique. At most 128 bytes, printable.
    public var name: String
    /// For people and for filtering: at most 64, keys and values in Kubernetes label syntax.
    public var labels: [String: String]
    /// The signal a stop (and a timeout) sends first, before SIGKILL after the grace period:
    /// SIGTERM by default; one of the signals a job can catch and its init forwards (HUP, INT,
    /// QUIT, TERM, USR1, USR2).
    public var stopSignal: Int32
    /// After this much wall-clock time the job is stopped as a stop stops it (its stop signal,
    /// the grace period, SIGKILL) and ends `timedOut`; nil: the worker's default
    /// (`WorkerConfiguration.defaultTimeout`), none unless set.
    public var timeout: Duration?
    /// Makes the start idempotent: a start whose owner already has a job with this token (among
    /// the jobs the worker still keeps, across restarts) returns that job and starts nothing; the
    /// same token with a different spec is `alreadyExists`. At most 128 bytes, printable; nil: none.
    public var clientToken: String?

    public init(
        command: String, arguments: [String] = [], environment: [String: String] = [:],
        workingDirectory: String? = nil, limits: ResourceLimits = ResourceLimits(), standardInput: [UInt8]? = nil,
        name: String = "", labels: [String: String] = [:], stopSignal: Int32 = SIGTERM, timeout: Duration? = nil,
        clientToken: String? = nil
    ) {
        self.clientToken = clientToken
        self.timeout = timeout
        self.stopSignal = stopSignal
        self.name = name
        self.labels = labels
        self.standardInput = standardInput
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.limits = limits
    }
}
