/// Per-job resource limits. In a request, 0 means "use the worker's default"; in a job's status
/// (the limits as applied), 0 means "unlimited".
public struct ResourceLimits: Sendable, Hashable {
    /// CPU time per wall-clock second, in thousandths of a CPU: 1000 = one full CPU.
    public var cpuMillis: UInt32 = 0
    /// Memory (RAM; swap is not allowed on top of it), in bytes.
    public var memoryBytes: UInt64 = 0
    /// Disk reads and writes on the worker's IO devices, per second.
    public var ioReadBytesPerSecond: UInt64 = 0
    public var ioWriteBytesPerSecond: UInt64 = 0
    public var ioReadOpsPerSecond: UInt64 = 0
    public var ioWriteOpsPerSecond: UInt64 = 0
    /// Processes and threads alive at once.
    public var maxProcesses: UInt32 = 0

    public init(
        cpuMillis: UInt32 = 0, memoryBytes: UInt64 = 0, ioReadBytesPerSecond: UInt64 = 0,
        ioWriteBytesPerSecond: UInt64 = 0, ioReadOpsPerSecond: UInt64 = 0, ioWriteOpsPerSecond: UInt64 = 0,
        maxProcesses: UInt32 = 0
    ) {
        self.cpuMillis = cpuMillis
        self.memoryBytes = memoryBytes
        self.ioReadBytesPerSecond = ioReadBytesPerSecond
        self.ioWriteBytesPerSecond = ioWriteBytesPerSecond
        self.ioReadOpsPerSecond = ioReadOpsPerSecond
        self.ioWriteOpsPerSecond = ioWriteOpsPerSecond
        self.maxProcesses = maxProcesses
    }

    /// The limits that differ from `current`; 0 for those that do not. What a cgroup that has
    /// `current` needs written to have these.
    func changes(from current: ResourceLimits) -> ResourceLimits {
        ResourceLimits(named: zip(named, current.named).map { new, old in new.value == old.value ? 0 : new.value })
    }

    /// Each limit with its name as users see it and its unit, for messages.
    var named: [(name: String, value: UInt64, unit: LimitUnit)] {
        [
            ("cpu", UInt64(cpuMillis), .millicores), ("memory", memoryBytes, .bytes),
            ("io read", ioReadBytesPerSecond, .bytesPerSecond), ("io write", ioWriteBytesPerSecond, .bytesPerSecond),
            ("io read iops", ioReadOpsPerSecond, .count), ("io write iops", ioWriteOpsPerSecond, .count),
            ("max processes", UInt64(maxProcesses), .count),
        ]
    }

    init(named values: [UInt64]) {
        self.init(
            cpuMillis: UInt32(values[0]), memoryBytes: values[1], ioReadBytesPerSecond: values[2],
            ioWriteBytesPerSecond: values[3], ioReadOpsPerSecond: values[4], ioWriteOpsPerSecond: values[5],
            maxProcesses: UInt32(values[6]))
    }
}

/// What a job used, from its cgroup: live while it runs, final once it has ended.
public struct ResourceUsage: Sendable, Hashable {
    /// CPU time, user and system, in microseconds.
    public var cpuMicroseconds: UInt64 = 0
    /// The most memory the job's processes held at once, in bytes.
    public var memoryPeakBytes: UInt64 = 0
    /// Bytes read from and written to the worker's IO devices. On cgroup v1 buffered writes are
    /// charged to the kernel's writeback, not to the job: only direct IO is counted there.
    public var ioReadBytes: UInt64 = 0
    public var ioWriteBytes: UInt64 = 0

    public init(
        cpuMicroseconds: UInt64 = 0, memoryPeakBytes: UInt64 = 0, ioReadBytes: UInt64 = 0, ioWriteBytes: UInt64 = 0
    ) {
        self.cpuMicroseconds = cpuMicroseconds
        self.memoryPeakBytes = memoryPeakBytes
        self.ioReadBytes = ioReadBytes
        self.ioWriteBytes = ioWriteBytes
    }
}

/// The server's defaults and ceilings for job limits.
///
/// A request above a ceiling is refused with a message naming the limit and the ceiling; it is
/// never silently clamped. An unset (0) request gets the default; where the default is unlimited
/// but a ceiling exists, the ceiling is the default.
public struct ResourcePolicy: Sendable, Hashable {
    /// Used for every limit a request leaves at 0. 0 here means unlimited.
    public var defaults: ResourceLimits
    /// The most a request may ask for. 0 here means no ceiling.
    public var ceilings: ResourceLimits

    public init(
        defaults: ResourceLimits = ResourceLimits(cpuMillis: 1000, memoryBytes: 1 << 30, maxProcesses: 1024),
        ceilings: ResourceLimits = ResourceLimits()
    ) {
        self.defaults = defaults
        self.ceilings = ceilings
    }

    /// The standard defaults (1 CPU, 1 GiB, 1024 processes) with this host's capacity as the
    /// ceilings; a default above its ceiling (a small host) is lowered to it.
    public static func hostSized(
        defaults: ResourceLimits = ResourceLimits(cpuMillis: 1000, memoryBytes: 1 << 30, maxProcesses: 1024),
        capacity: HostCapacity = .measure()
    ) -> ResourcePolicy {
        let ceilings = capacity.ceilings
        let lowered = zip(defaults.named, ceilings.named).map { fallback, ceiling in
            ceiling.value == 0 ? fallback.value : min(fallback.value, ceiling.value)
        }
        return ResourcePolicy(defaults: ResourceLimits(named: lowered), ceilings: ceilings)
    }

    /// The defaults and ceilings, for the startup log: "cpu 1000m (ceiling 2000m), …".
    public var summary: String {
        zip(defaults.named, ceilings.named).map { fallback, ceiling in
            let value = fallback.value == 0 ? "unlimited" : fallback.unit.format(fallback.value)
            let most = ceiling.value == 0 ? "no ceiling" : "ceiling " + ceiling.unit.format(ceiling.value)
            return "\(fallback.name) \(value) (\(most))"
        }.joined(separator: ", ")
    }

    /// The least a request may ask for, where a smaller limit cannot work: 10m CPU (a CFS quota
    /// of 1 ms per 100 ms period is the kernel's least), 6 MiB of memory (as Docker; below it
    /// the cgroup refuses a limit under what the job's init already uses), 2 processes (the
    /// job's init counts as one).
    public static let floors = ResourceLimits(cpuMillis: 10, memoryBytes: 6 << 20, maxProcesses: 2)

    /// The limits to apply for `requested`, or an `invalidArgument` error.
    public func apply(_ requested: ResourceLimits) throws(JobWorkerError) -> ResourceLimits {
        for (request, floor) in zip(requested.named, Self.floors.named)
        where request.value != 0 && request.value < floor.value {
            throw JobWorkerError(
                .invalidArgument,
                "\(request.name) limit \(request.unit.format(request.value)) is below the minimum of "
                    + floor.unit.format(floor.value))
        }
        var applied: [UInt64] = []
        for (request, (fallback, ceiling)) in zip(requested.named, zip(defaults.named, ceilings.named)) {
            if ceiling.value != 0 && request.value > ceiling.value {
                throw JobWorkerError(
                    .invalidArgument,
                    "\(request.name) limit \(request.unit.format(request.value)) exceeds the server ceiling "
                        + ceiling.unit.format(ceiling.value))
            }
            let value = request.value != 0 ? request.value : fallback.value
            applied.append(value == 0 ? ceiling.value : value)
        }
        return ResourceLimits(named: applied)
    }

    /// Refuses a policy whose default lies above its ceiling: every job would be refused or clamped.
    public func validate() throws(JobWorkerError) {
        for (fallback, ceiling) in zip(defaults.named, ceilings.named)
        where ceiling.value != 0 && fallback.value > ceiling.value {
            throw JobWorkerError(
                .invalidArgument,
                "default \(fallback.name) limit \(fallback.unit.format(fallback.value)) exceeds its ceiling "
                    + ceiling.unit.format(ceiling.value))
        }
    }
}

/// How a limit's value reads in a message: `1500m` CPU, `8Gi` memory, `10Mi/s` IO.
enum LimitUnit {
    case millicores, bytes, bytesPerSecond, count

    func format(_ value: UInt64) -> String {
        switch self {
        case .millicores: "\(value)m"
        case .bytes: Self.binary(value)
        case .bytesPerSecond: Self.binary(value) + "/s"
        case .count: "\(value)"
        }
    }

    private static func binary(_ value: UInt64) -> String {
        for (suffix, shift) in [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] as [(String, UInt64)]
        where value >= 1 << shift && value % (1 << shift) == 0 {
            return "\(value >> shift)\(suffix)"
        }
        return "\(value)"
    }
}
