#if canImport(Glibc)
    import Glibc
#endif

/// cgroup v2: one unified hierarchy.
///
/// Job cgroups live at `<worker's cgroup>/jobworker/<job>`. To respect the no-internal-process
/// rule when the worker is not in the root cgroup, the worker first moves itself into a leaf
/// `<worker's cgroup>/supervisor`, then enables the controllers in its cgroup's and in
/// `jobworker`'s `cgroup.subtree_control`. New jobs are cloned straight into their cgroup
/// (CLONE_INTO_CGROUP); `cgroup.kill` ends them; `cgroup.events` tells when they are gone.
struct CgroupV2: CgroupBackend {
    var mode: CgroupMode { .v2 }
    static let requiredControllers = ["cpu", "io", "memory", "pids"]

    let parent: String
    let devices: [BlockDevice]
    /// Whether `memory.swap.max` exists, so swap can be refused.
    let limitsSwap: Bool

    /// Prepares the worker's part of the hierarchy; fails with advice if a controller is missing.
    init(
        hierarchy: CgroupHost.Hierarchy, devices: [BlockDevice], parentName: String, workerPID: Int32 = getpid()
    ) throws(JobWorkerError) {
        let own = hierarchy.ownDirectory
        let available = Set(
            (CgroupFiles.read(own + "/cgroup.controllers") ?? "").split(separator: " ").map {
                $0.trimmingWhitespace()
            })
        let missing = Self.requiredControllers.filter { !available.contains($0) }
        guard missing.isEmpty else {
            throw JobWorkerError(
                .systemFailure,
                "cgroup v2: controller(s) \(missing.joined(separator: ", ")) not available in \(own); delegate them "
                    + "to the worker (systemd: Delegate=yes) or enable them in the parent's cgroup.subtree_control")
        }
        if hierarchy.ownPath != "/" {
            let leaf = own + "/supervisor"
            try CgroupFiles.makeDirectory(leaf)
            try CgroupFiles.write("\(workerPID)", to: leaf + "/cgroup.procs")
        }
        let enable = Self.requiredControllers.map { "+" + $0 }.joined(separator: " ")
        let parent = own + "/" + parentName
        do {
            try CgroupFiles.write(enable, to: own + "/cgroup.subtree_control")
            try CgroupFiles.makeDirectory(parent)
            try CgroupFiles.write(enable, to: parent + "/cgroup.subtree_control")
        } catch  where error.systemError == EBUSY {
            throw JobWorkerError(
                .systemFailure,
                "cgroup v2: cannot enable controllers in \(own): other processes share the worker's cgroup; "
                    + "run the worker in a cgroup of its own", systemError: EBUSY)
        }
        self.init(parent: parent, devices: devices)
    }

    init(parent: String, devices: [BlockDevice]) {
        self.parent = parent
        self.devices = devices
        limitsSwap = CgroupFiles.exists(parent + "/memory.swap.max")
    }

    var summary: String {
        "cgroup v2 (" + Self.requiredControllers.joined(separator: ", ") + "), job cgroups under \(parent)"
    }

    var parentDirectories: [String] { [parent] }

    func createCgroup(named name: String, limits: ResourceLimits) throws(JobWorkerError) -> any JobCgroup {
        let cgroup = CgroupV2Job(directory: parent + "/" + name, devices: devices, limitsSwap: limitsSwap)
        try systemCall("cgroup: creating \(cgroup.directory)") { mkdir(cgroup.directory, 0o755) }
        do {
            try cgroup.apply(limits, replacing: ResourceLimits())
        } catch {
            rmdir(cgroup.directory)
            throw error
        }
        return cgroup
    }

    func limitParents(_ limits: SharedJobLimits) throws(JobWorkerError) {
        try CgroupFiles.write("\(limits.memoryBytes)", to: parent + "/memory.max")
        try CgroupFiles.write("\(limits.maxProcesses)", to: parent + "/pids.max")
    }

    func existingCgroup(named name: String) -> any JobCgroup {
        CgroupV2Job(directory: parent + "/" + name, devices: devices, limitsSwap: limitsSwap)
    }
}

/// One job's cgroup directory.
struct CgroupV2Job: JobCgroup {
    let directory: String
    let devices: [BlockDevice]
    let limitsSwap: Bool

    var directories: [String] { [directory] }

    private func path(_ file: String) -> String { directory + "/" + file }

    func apply(_ limits: ResourceLimits, replacing current: ResourceLimits) throws(JobWorkerError) {
        let limits = limits.changes(from: current)
        if limits.cpuMillis != 0 {
            try CgroupFiles.write("\(UInt64(limits.cpuMillis) * 100) 100000", to: path("cpu.max"))
        }
        if limits.memoryBytes != 0 {
            try CgroupFiles.write("\(limits.memoryBytes)", to: path("memory.max"))
            if limitsSwap {
                try CgroupFiles.write("0", to: path("memory.swap.max"))
            }
        }
        if limits.maxProcesses != 0 {
            try CgroupFiles.write("\(limits.maxProcesses)", to: path("pids.max"))
        }
        let keys = [
            ("rbps", limits.ioReadBytesPerSecond), ("wbps", limits.ioWriteBytesPerSecond),
            ("riops", limits.ioReadOpsPerSecond), ("wiops", limits.ioWriteOpsPerSecond),
        ].filter { $0.1 != 0 }
        if !keys.isEmpty {
            let settings = keys.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
            for device in devices {
                try CgroupFiles.write("\(device) \(settings)", to: path("io.max"))
            }
        }
    }

    func openPlacement() throws(JobWorkerError) -> OpenCgroupPlacement {
        var descriptors = FileDescriptorSet()
        let descriptor = try FileDescriptor("cgroup: opening \(directory)") {
            open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        let placement = CgroupPlacement.directory(descriptor.rawValue)
        descriptors.insert(descriptor)
        return OpenCgroupPlacement(placement, descriptors)
    }

    func usage() -> ResourceUsage {
        var usage = ResourceUsage()
        usage.cpuMicroseconds = CgroupFiles.keyedValue("usage_usec", in: path("cpu.stat")) ?? 0
        usage.memoryPeakBytes =
            CgroupFiles.number(path("memory.peak")) ?? CgroupFiles.number(path("memory.current")) ?? 0
        // Lines: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N"
        let wanted = Set(devices.map(\.description))
        for line in (CgroupFiles.read(path("io.stat")) ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let device = fields.first, wanted.contains(String(device)) else { continue }
            for field in fields.dropFirst() {
                let pair = field.split(separator: "=")
                guard pair.count == 2, let value = UInt64(pair[1]) else { continue }
                if pair[0] == "rbytes" { usage.ioReadBytes += value }
                if pair[0] == "wbytes" { usage.ioWriteBytes += value }
            }
        }
        return usage
    }

    func oomKills() -> UInt64 {
        CgroupFiles.keyedValue("oom_kill", in: path("memory.events")) ?? 0
    }

    func killAll() {
        try? CgroupFiles.write("1", to: path("cgroup.kill"))
    }

    var isEmpty: Bool { CgroupFiles.keyedValue("populated", in: path("cgroup.events")) != 1 }

    func waitUntilEmpty(monitor: EventMonitor) async {
        // cgroup.events changes ("populated 0") raise IN_MODIFY: wait for it, never poll.
        let changed = ChangeSignal()
        let watch = try? monitor.onWrite(to: path("cgroup.events")) { changed.signal() }
        defer { watch.map(monitor.removeWriteWatch) }
        while !Task.isCancelled {
            let before = changed.snapshot
            guard CgroupFiles.keyedValue("populated", in: path("cgroup.events")) == 1, watch != nil else { return }
            await changed.wait(whileGenerationIs: before.generation)
        }
    }

    func remove() async {
        _ = await removeCgroupDirectory(directory)
    }
}
