#if canImport(Glibc)
    import Glibc
#endif

/// cgroup v1: one hierarchy per controller (some co-mounted, like cpu,cpuacct).
///
/// Job cgroups live at `<mount><worker's own cgroup>/jobworker/<job>` in every hierarchy the
/// worker needs. The child joins them by writing "0" to pre-opened `cgroup.procs` files before
/// exec. v1 has no `cgroup.kill`: killing freezes the cgroup, SIGKILLs every member, and thaws.
struct CgroupV1: CgroupBackend {
    var mode: CgroupMode { .v1 }
    static let requiredControllers = ["cpu", "cpuacct", "memory", "blkio", "pids", "freezer"]

    /// Parent directory per controller (co-mounted controllers share one).
    let parents: [String: String]
    let devices: [BlockDevice]
    /// Whether swap accounting exists (`memory.memsw.*`), so swap can be limited too.
    let limitsSwap: Bool

    /// Uses the host's hierarchies; fails with advice if a controller is missing.
    init(host: CgroupHost, devices: [BlockDevice], parentName: String) throws(JobWorkerError) {
        var parents: [String: String] = [:]
        for controller in Self.requiredControllers {
            guard let hierarchy = host.v1Hierarchy(for: controller) else {
                throw JobWorkerError(
                    .systemFailure,
                    "cgroup v1: the \(controller) controller is not mounted; mount it (mount -t cgroup -o "
                        + "\(controller) cgroup /sys/fs/cgroup/\(controller)) or enable it in the kernel")
            }
            parents[controller] = hierarchy.ownDirectory + "/" + parentName
        }
        // Before `init(parents:devices:)`, which looks for the swap accounting files in them.
        for directory in Set(parents.values).sorted() {
            try CgroupFiles.makeDirectory(directory)
        }
        self.init(parents: parents, devices: devices)
    }

    init(parents: [String: String], devices: [BlockDevice]) {
        self.parents = parents
        self.devices = devices
        limitsSwap = parents["memory"].map { CgroupFiles.exists($0 + "/memory.memsw.limit_in_bytes") } ?? false
    }

    var summary: String {
        "cgroup v1 (" + Self.requiredControllers.joined(separator: ", ") + "), job cgroups under "
            + parentDirectories.joined(separator: ", ")
    }

    var parentDirectories: [String] { Array(Set(parents.values)).sorted() }

    func createCgroup(named name: String, limits: ResourceLimits) throws(JobWorkerError) -> any JobCgroup {
        let cgroup = existingCgroup(named: name)
        do {
            for directory in cgroup.directories {
                try systemCall("cgroup: creating \(directory)") { mkdir(directory, 0o755) }
            }
            try cgroup.apply(limits, replacing: ResourceLimits())
        } catch {
            for directory in cgroup.directories { rmdir(directory) }
            throw error
        }
        return cgroup
    }

    func limitParents(_ limits: SharedJobLimits) throws(JobWorkerError) {
        let memory = parents["memory"]! + "/memory.limit_in_bytes"
        let swap = parents["memory"]! + "/memory.memsw.limit_in_bytes"
        let value = "\(limits.memoryBytes)"
        // memory ≤ memory plus swap at every step: lowering writes memory first, raising swap first.
        do throws(JobWorkerError) {
            try CgroupFiles.write(value, to: memory)
            if limitsSwap { try CgroupFiles.write(value, to: swap) }
        } catch  where limitsSwap {
            try CgroupFiles.write(value, to: swap)
            try CgroupFiles.write(value, to: memory)
        }
        try CgroupFiles.write("\(limits.maxProcesses)", to: parents["pids"]! + "/pids.max")
    }

    func existingCgroup(named name: String) -> any JobCgroup {
        CgroupV1Job(directories: parents.mapValues { $0 + "/" + name }, devices: devices, limitsSwap: limitsSwap)
    }
}

/// One job's cgroup directories, by controller.
struct CgroupV1Job: JobCgroup {
    let directoryByController: [String: String]
    let devices: [BlockDevice]
    let limitsSwap: Bool

    init(directories: [String: String], devices: [BlockDevice], limitsSwap: Bool) {
        directoryByController = directories
        self.devices = devices
        self.limitsSwap = limitsSwap
    }

    var directories: [String] { Array(Set(directoryByController.values)).sorted() }

    private func path(_ controller: String, _ file: String) -> String {
        directoryByController[controller]! + "/" + file
    }

    func apply(_ limits: ResourceLimits, replacing current: ResourceLimits) throws(JobWorkerError) {
        let changes = limits.changes(from: current)
        if changes.cpuMillis != 0 {
            // The period of a new cgroup is the kernel's default, 100000 µs: only the quota is set.
            try CgroupFiles.write("\(UInt64(changes.cpuMillis) * 100)", to: path("cpu", "cpu.cfs_quota_us"))
        }
        if changes.memoryBytes != 0 {
            let memory = path("memory", "memory.limit_in_bytes")
            if limitsSwap {
                // Memory plus swap equal to memory: swap cannot extend the limit. The kernel
                // keeps memory ≤ memory plus swap at every step, so a raise (over a parked
                // init's default) sets memory plus swap first.
                let swap = path("memory", "memory.memsw.limit_in_bytes")
                let raising = current.memoryBytes != 0 && changes.memoryBytes > current.memoryBytes
                for file in raising ? [swap, memory] : [memory, swap] {
                    try CgroupFiles.write("\(changes.memoryBytes)", to: file)
                }
            } else {
                try CgroupFiles.write("\(changes.memoryBytes)", to: memory)
            }
        }
        if changes.maxProcesses != 0 {
            try CgroupFiles.write("\(changes.maxProcesses)", to: path("pids", "pids.max"))
        }
        let throttles: [(String, UInt64)] = [
            ("blkio.throttle.read_bps_device", changes.ioReadBytesPerSecond),
            ("blkio.throttle.write_bps_device", changes.ioWriteBytesPerSecond),
            ("blkio.throttle.read_iops_device", changes.ioReadOpsPerSecond),
            ("blkio.throttle.write_iops_device", changes.ioWriteOpsPerSecond),
        ]
        for (file, value) in throttles where value != 0 {
            for device in devices {
                try CgroupFiles.write("\(device) \(value)", to: path("blkio", file))
            }
        }
    }

    func openPlacement() throws(JobWorkerError) -> OpenCgroupPlacement {
        var descriptors = FileDescriptorSet()
        for directory in directories {
            descriptors.insert(
                try FileDescriptor("cgroup: opening \(directory)/cgroup.procs") {
                    open(directory + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
                })
        }
        let placement = CgroupPlacement.procsFiles(descriptors.rawValues)
        return OpenCgroupPlacement(placement, descriptors)
    }

    func usage() -> ResourceUsage {
        var usage = ResourceUsage()
        usage.cpuMicroseconds = (CgroupFiles.number(path("cpuacct", "cpuacct.usage")) ?? 0) / 1000
        usage.memoryPeakBytes = CgroupFiles.number(path("memory", "memory.max_usage_in_bytes")) ?? 0
        // Lines: "MAJ:MIN Read N", "MAJ:MIN Write N", ...
        let wanted = Set(devices.map(\.description))
        for line in (CgroupFiles.read(path("blkio", "blkio.throttle.io_service_bytes")) ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, wanted.contains(String(fields[0])), let value = UInt64(fields[2]) else { continue }
            switch fields[1] {
            case "Read": usage.ioReadBytes += value
            case "Write": usage.ioWriteBytes += value
            default: break
            }
        }
        return usage
    }

    func oomKills() -> UInt64 {
        CgroupFiles.keyedValue("oom_kill", in: path("memory", "memory.oom_control")) ?? 0
    }

    /// Every job process is in every hierarchy; the freezer's list stands for all.
    var isEmpty: Bool { processes(inProcsFile: path("freezer", "cgroup.procs")).isEmpty }

    func killAll() {
        let procs = path("freezer", "cgroup.procs")
        let freezer = path("freezer", "freezer.state")
        // Frozen processes cannot fork; the SIGKILLs take effect at the thaw.
        try? CgroupFiles.write("FROZEN", to: freezer)
        for pid in processes(inProcsFile: procs) {
            kill(pid, SIGKILL)
        }
        try? CgroupFiles.write("THAWED", to: freezer)
    }

    func waitUntilEmpty(monitor: EventMonitor) async {
        // v1 has no "populated" event: re-kill and look again with a growing pause. A process
        // caught mid-fork by the freeze is found and killed on the next pass.
        var pause = Duration.microseconds(200)
        let deadline = ContinuousClock.now + .seconds(30)
        while !isEmpty, ContinuousClock.now < deadline {
            killAll()
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(50))
        }
    }

    func remove() async {
        for directory in directories {
            _ = await removeCgroupDirectory(directory)
        }
    }
}
