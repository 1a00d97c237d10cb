/// How a new process is placed in its cgroup before its first instruction.
enum CgroupPlacement {
    /// No cgroup (resource control disabled).
    case none
    /// cgroup v2: a directory descriptor for clone3's CLONE_INTO_CGROUP.
    case directory(Int32)
    /// cgroup v1: `cgroup.procs` descriptors, one per hierarchy, that the child writes "0" to.
    case procsFiles([Int32])
}

/// The descriptors a placement needs, open for the duration of a launch: closed when this goes.
struct OpenCgroupPlacement: ~Copyable {
    let placement: CgroupPlacement
    private let descriptors: FileDescriptorSet

    static var none: OpenCgroupPlacement { OpenCgroupPlacement(.none, FileDescriptorSet()) }

    init(_ placement: CgroupPlacement, _ descriptors: consuming FileDescriptorSet) {
        self.placement = placement
        self.descriptors = descriptors
    }
}

/// A host's cgroup implementation: v1 (one hierarchy per controller) or v2 (unified).
///
/// One backend per mode, the same verbs in each, after nsjail's cgroup.cc / cgroup2.cc and
/// opencontainers/cgroups' per-controller set/stat pairs.
protocol CgroupBackend: Sendable {
    var mode: CgroupMode { get }
    /// Which mode and controllers are in use, for the startup log.
    var summary: String { get }
    /// The directories under which job cgroups are created, one per hierarchy.
    var parentDirectories: [String] { get }
    /// Creates the job's cgroup(s) and writes `limits` into them.
    func createCgroup(named name: String, limits: ResourceLimits) throws(JobWorkerError) -> any JobCgroup
    /// The cgroup of an existing directory name under the parents (for leftovers of a previous run).
    func existingCgroup(named name: String) -> any JobCgroup
    /// Bounds all jobs together: the parents' memory and process limits.
    func limitParents(_ limits: SharedJobLimits) throws(JobWorkerError)
}

/// One job's cgroup (one directory per hierarchy on v1).
protocol JobCgroup: Sendable {
    var directories: [String] { get }
    /// Writes those of `limits` that differ from `current`, the limits the cgroup has (none for
    /// a new cgroup). 0 = unlimited: the file is left alone, so a limit is never lifted; the
    /// worker's limits are filled in from its defaults, 0 only where those are unlimited too.
    func apply(_ limits: ResourceLimits, replacing current: ResourceLimits) throws(JobWorkerError)
    /// Opens the descriptors the launcher needs, closed when the result goes away.
    func openPlacement() throws(JobWorkerError) -> OpenCgroupPlacement
    /// Usage so far (live) or final (after the job ended, before removal).
    func usage() -> ResourceUsage
    /// How many processes the kernel's OOM killer has killed in this cgroup.
    func oomKills() -> UInt64
    /// SIGKILLs every process in the cgroup, including ones that left the job's process group
    /// and ones forking while this runs. Does not wait.
    func killAll()
    /// Whether no process is left in the cgroup.
    var isEmpty: Bool { get }
    /// Returns once no process is left in the cgroup.
    func waitUntilEmpty(monitor: EventMonitor) async
    /// Removes the (empty) cgroup, retrying while the kernel still reports it busy.
    func remove() async
}

/// Removes a cgroup directory; while the kernel reports EBUSY (tasks still exiting), retries with
/// a growing pause. Cgroups offer no event for "removable", so this is the one retry loop.
func removeCgroupDirectory(_ path: String) async -> Bool {
    var pause = Duration.microseconds(500)
    let deadline = ContinuousClock.now + .seconds(30)
    while true {
        if rmdir(path) == 0 || errno == ENOENT { return true }
        guard errno == EBUSY, ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: pause)
        pause = min(pause * 2, .milliseconds(100))
    }
}

/// The PIDs listed in a `cgroup.procs` file.
func processes(inProcsFile path: String) -> [Int32] {
    (CgroupFiles.read(path) ?? "").split(separator: "\n").compactMap { Int32($0) }
}

#if canImport(Glibc)
    import Glibc
#endif
