/// What the host offers: which cgroup mode, where each hierarchy is mounted, and where the worker
/// itself sits. Parsed from /proc/self/mountinfo and /proc/self/cgroup (pure functions of their
/// text, so they are unit-tested on samples of both modes).
struct CgroupHost: Sendable, Equatable {
    /// A mounted cgroup hierarchy.
    struct Hierarchy: Sendable, Equatable {
        /// Controllers bound to this hierarchy (v1), e.g. ["cpu", "cpuacct"]; empty for cgroup2.
        var controllers: [String]
        var mountPoint: String
        /// The worker's own cgroup in this hierarchy, relative to the mount ("/" for the root).
        var ownPath: String

        var ownDirectory: String { ownPath == "/" ? mountPoint : mountPoint + ownPath }
    }

    /// v1 hierarchies, one per mount (controllers may share one).
    var v1: [Hierarchy]
    /// The cgroup2 mount, if any.
    var v2: Hierarchy?

    static func current() -> CgroupHost {
        CgroupHost(
            mountInfo: CgroupFiles.read("/proc/self/mountinfo") ?? "",
            processCgroups: CgroupFiles.read("/proc/self/cgroup") ?? "")
    }

    init(v1: [Hierarchy], v2: Hierarchy?) {
        self.v1 = v1
        self.v2 = v2
    }

    init(mountInfo: String, processCgroups: String) {
        // /proc/self/cgroup: "ID:controllers:path"; cgroup2 is "0::path".
        var ownPaths: [String: String] = [:]
        for line in processCgroups.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            ownPaths[String(fields[1])] = String(fields[2])
        }
        var v1: [Hierarchy] = []
        var v2: Hierarchy?
        // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
        for line in mountInfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let separator = fields.firstIndex(of: "-"), separator + 3 < fields.count, fields.count > 4 else {
                continue
            }
            let mountPoint = Self.unescape(String(fields[4]))
            switch fields[separator + 1] {
            case "cgroup2":
                v2 = Hierarchy(controllers: [], mountPoint: mountPoint, ownPath: ownPaths[""] ?? "/")
            case "cgroup":
                let known = [
                    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "net_cls",
                    "net_prio", "perf_event", "hugetlb", "rdma", "misc",
                ]
                let controllers = fields[separator + 3].split(separator: ",").map(String.init)
                    .filter { known.contains($0) }
                guard !controllers.isEmpty else { continue }
                let key = ownPaths.keys.first { Set($0.split(separator: ",").map(String.init)) == Set(controllers) }
                v1.append(
                    Hierarchy(
                        controllers: controllers, mountPoint: mountPoint, ownPath: key.flatMap { ownPaths[$0] } ?? "/"))
            default:
                continue
            }
        }
        self.init(v1: v1, v2: v2)
    }

    /// The v1 hierarchy that carries `controller`.
    func v1Hierarchy(for controller: String) -> Hierarchy? {
        v1.first { $0.controllers.contains(controller) }
    }

    /// Mount points escape spaces and such as octal (`\040`).
    private static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var result: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            if byte == UInt8(ascii: "\\"), bytes.count >= 3,
                let value = UInt8(String(decoding: bytes.prefix(3), as: UTF8.self), radix: 8)
            {
                result.append(value)
                bytes = bytes.dropFirst(3)
            } else {
                result.append(byte)
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}
