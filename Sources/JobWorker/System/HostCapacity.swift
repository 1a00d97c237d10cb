#if canImport(Glibc)
    import Glibc
#endif

/// What this host has, as ceilings for what one job may ask for.
///
/// Without them a request for 2^62 bytes of memory or a million CPUs was accepted and became a
/// limit that limits nothing; a request above what the host has is a mistake the user should
/// hear about (INVALID_ARGUMENT naming the ceiling), as `docker run --cpus 99` is refused.
public struct HostCapacity: Sendable, Hashable {
    /// MemTotal, or the server's own cgroup memory limit (the lowest on its path) if lower.
    public var memoryBytes: UInt64
    /// Online CPUs × 1000.
    public var cpuMillis: UInt32
    /// The kernel's `pid_max`, or the server's own cgroup pids limit if lower.
    public var processes: UInt32

    public init(memoryBytes: UInt64, cpuMillis: UInt32, processes: UInt32) {
        self.memoryBytes = memoryBytes
        self.cpuMillis = cpuMillis
        self.processes = processes
    }

    /// This host's capacity, read from /proc and the server's cgroups (v1 or v2).
    public static func measure(cgroupRoot: String = "/sys/fs/cgroup") -> HostCapacity {
        let memberships = CgroupMembership.ofThisProcess()
        let memoryTotal = SharedJobLimits.hostMemoryTotal() ?? (8 << 30)
        let pidMax = UInt64(SharedJobLimits.hostPidMax() ?? 32768)
        let memoryLimit = memberships.lowestLimit(
            controller: "memory", v1File: "memory.limit_in_bytes",
            v2File: "memory.max", root: cgroupRoot)
        let pidsLimit = memberships.lowestLimit(
            controller: "pids", v1File: "pids.max", v2File: "pids.max",
            root: cgroupRoot)
        let cpus = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return HostCapacity(
            memoryBytes: min(memoryTotal, memoryLimit ?? .max),
            cpuMillis: UInt32(clamping: cpus * 1000),
            processes: UInt32(clamping: min(pidMax, pidsLimit ?? .max)))
    }

    /// The ceilings these give: memory, CPU and processes (IO has no host-wide figure).
    public var ceilings: ResourceLimits {
        ResourceLimits(cpuMillis: cpuMillis, memoryBytes: memoryBytes, maxProcesses: processes)
    }
}

/// The cgroups this process is in, from /proc/self/cgroup.
struct CgroupMembership {
    /// v1: controller name → path in that controller's hierarchy.
    var v1: [String: String] = [:]
    /// v2: the path in the unified hierarchy ("0::/path").
    var v2: String?

    static func ofThisProcess() -> CgroupMembership {
        parse(CgroupFiles.read("/proc/self/cgroup") ?? "")
    }

    /// Lines "ID:CONTROLLERS:PATH"; v2 is "0::PATH".
    static func parse(_ text: String) -> CgroupMembership {
        var membership = CgroupMembership()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                membership.v2 = String(fields[2])
            } else {
                for controller in fields[1].split(separator: ",") {
                    membership.v1[String(controller)] = String(fields[2])
                }
            }
        }
        return membership
    }

    /// The lowest limit in `file` on the path from this process's cgroup to the root ("max" and
    /// absurdly large v1 values are no limit), for one controller.
    func lowestLimit(controller: String, v1File: String, v2File: String, root: String) -> UInt64? {
        if let path = v1[controller] {
            return Self.lowest(v1File, from: root + "/" + controller, path: path)
        }
        guard let path = v2 else { return nil }
        // A pure v2 host mounts the hierarchy at the root; a hybrid one under "unified".
        let mount = CgroupFiles.exists(root + "/cgroup.controllers") ? root : root + "/unified"
        return Self.lowest(v2File, from: mount, path: path)
    }

    private static func lowest(_ file: String, from mount: String, path: String) -> UInt64? {
        var components = path.split(separator: "/").map(String.init)
        var lowest: UInt64?
        while true {
            let directory = ([mount] + components).joined(separator: "/")
            // v1 reports "no limit" as the largest page-aligned Int64.
            if let value = CgroupFiles.number(directory + "/" + file), value < UInt64(Int64.max) / 2 {
                lowest = min(lowest ?? value, value)
            }
            guard !components.isEmpty else { return lowest }
            components.removeLast()
        }
    }
}
