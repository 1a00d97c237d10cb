import Foundation
import Testing

@testable import JobWorker

/// Both backends against a fake cgroup tree in a temporary directory: which files receive which
/// values. The host's real backend is exercised by ResourceControlTests.
@Suite("cgroup backends on a fake cgroup file system")
final class CgroupBackendTests {
    let root: String
    let disk = BlockDevice(major: 254, minor: 0)
    let id = JobID().description
    let limits = ResourceLimits(
        cpuMillis: 250, memoryBytes: 64 << 20, ioReadBytesPerSecond: 1 << 20, ioWriteBytesPerSecond: 2 << 20,
        ioReadOpsPerSecond: 0, ioWriteOpsPerSecond: 300, maxProcesses: 50)

    init() throws {
        root = try makeStateDirectory()
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    func write(_ text: String, _ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (root + "/" + path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: root + "/" + path, atomically: false, encoding: .utf8)
    }

    func contents(_ path: String) -> String? {
        try? String(contentsOfFile: root + "/" + path, encoding: .utf8)
    }

    // MARK: v2

    func makeV2() throws -> CgroupV2 {
        try write("cpuset cpu io memory hugetlb pids rdma misc\n", "worker.service/cgroup.controllers")
        try write("max\n", "worker.service/jobworker/memory.swap.max")
        let hierarchy = CgroupHost.Hierarchy(controllers: [], mountPoint: root, ownPath: "/worker.service")
        return try CgroupV2(hierarchy: hierarchy, devices: [disk], parentName: "jobworker", workerPID: 4242)
    }

    @Test("v2 setup moves the worker to a leaf and delegates controllers to the job parent")
    func v2Setup() throws {
        let backend = try makeV2()
        #expect(contents("worker.service/supervisor/cgroup.procs") == "4242")
        #expect(contents("worker.service/cgroup.subtree_control") == "+cpu +io +memory +pids")
        #expect(contents("worker.service/jobworker/cgroup.subtree_control") == "+cpu +io +memory +pids")
        #expect(backend.parentDirectories == [root + "/worker.service/jobworker"])
    }

    @Test("v2 writes each limit to its file")
    func v2Limits() throws {
        let cgroup = try makeV2().createCgroup(named: id, limits: limits)
        let job = "worker.service/jobworker/\(id)"
        #expect(cgroup.directories == [root + "/" + job])
        #expect(contents(job + "/cpu.max") == "25000 100000")
        #expect(contents(job + "/memory.max") == "67108864")
        #expect(contents(job + "/memory.swap.max") == "0")
        #expect(contents(job + "/pids.max") == "50")
        #expect(contents(job + "/io.max") == "254:0 rbps=1048576 wbps=2097152 wiops=300")
    }

    @Test("v2 leaves unlimited limits unwritten")
    func v2Unlimited() throws {
        _ = try makeV2().createCgroup(named: id, limits: ResourceLimits())
        let entries = try FileManager.default.contentsOfDirectory(atPath: root + "/worker.service/jobworker/\(id)")
        #expect(entries.isEmpty)
    }

    @Test("v2 refuses a host that does not delegate a required controller, saying how to fix it")
    func v2MissingController() throws {
        try write("cpu memory\n", "worker.service/cgroup.controllers")
        let hierarchy = CgroupHost.Hierarchy(controllers: [], mountPoint: root, ownPath: "/worker.service")
        #expect {
            try CgroupV2(hierarchy: hierarchy, devices: [disk], parentName: "jobworker", workerPID: 1)
        } throws: { error in
            let message = (error as? JobWorkerError)?.message ?? ""
            return message.contains("controller(s) io, pids not available") && message.contains("Delegate=yes")
        }
    }

    @Test("v2 usage, OOM count and kill use cpu.stat, memory.peak, io.stat, memory.events, cgroup.kill")
    func v2Accounting() throws {
        let cgroup = try makeV2().createCgroup(named: id, limits: limits)
        let job = "worker.service/jobworker/\(id)"
        try write("usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n", job + "/cpu.stat")
        try write("5000\n", job + "/memory.peak")
        try write(
            "254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:0 rbytes=99 wbytes=99 rios=9 wios=9\n",
            job + "/io.stat")
        try write("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n", job + "/memory.events")
        #expect(
            cgroup.usage()
                == ResourceUsage(cpuMicroseconds: 1234, memoryPeakBytes: 5000, ioReadBytes: 10, ioWriteBytes: 20))
        #expect(cgroup.oomKills() == 2)
        try write("populated 1\nfrozen 0\n", job + "/cgroup.events")
        #expect(!cgroup.isEmpty)
        cgroup.killAll()
        #expect(contents(job + "/cgroup.kill") == "1")
    }

    // MARK: v1

    func makeV1() throws -> CgroupV1 {
        let controllers = ["cpu", "cpuacct", "memory", "blkio", "pids", "freezer"]
        try write("9223372036854771712\n", "memory/jobworker/memory.memsw.limit_in_bytes")
        for controller in controllers {
            try FileManager.default.createDirectory(
                atPath: root + "/\(controller)/jobworker", withIntermediateDirectories: true)
        }
        return CgroupV1(
            parents: Dictionary(uniqueKeysWithValues: controllers.map { ($0, root + "/\($0)/jobworker") }),
            devices: [disk])
    }

    @Test("v1 writes each limit to its controller's file")
    func v1Limits() throws {
        let cgroup = try makeV1().createCgroup(named: id, limits: limits)
        #expect(cgroup.directories.count == 6)
        #expect(contents("cpu/jobworker/\(id)/cpu.cfs_period_us") == nil, "the default period, 100 ms, is kept")
        #expect(contents("cpu/jobworker/\(id)/cpu.cfs_quota_us") == "25000")
        #expect(contents("memory/jobworker/\(id)/memory.limit_in_bytes") == "67108864")
        #expect(contents("memory/jobworker/\(id)/memory.memsw.limit_in_bytes") == "67108864")
        #expect(contents("pids/jobworker/\(id)/pids.max") == "50")
        #expect(contents("blkio/jobworker/\(id)/blkio.throttle.read_bps_device") == "254:0 1048576")
        #expect(contents("blkio/jobworker/\(id)/blkio.throttle.write_bps_device") == "254:0 2097152")
        #expect(contents("blkio/jobworker/\(id)/blkio.throttle.read_iops_device") == nil)
        #expect(contents("blkio/jobworker/\(id)/blkio.throttle.write_iops_device") == "254:0 300")
    }

    @Test("v1 over a parked init's preset writes only the limits that differ")
    func v1OverPreset() throws {
        let preset = ResourceLimits(cpuMillis: 1000, memoryBytes: 1 << 30, maxProcesses: 1024)
        let cgroup = try makeV1().createCgroup(named: id, limits: preset)
        try write("untouched", "cpu/jobworker/\(id)/cpu.cfs_quota_us")
        try write("untouched", "pids/jobworker/\(id)/pids.max")
        try cgroup.apply(
            ResourceLimits(cpuMillis: 1000, memoryBytes: 2 << 30, ioWriteBytesPerSecond: 1 << 20, maxProcesses: 1024),
            replacing: preset)
        #expect(contents("cpu/jobworker/\(id)/cpu.cfs_quota_us") == "untouched")
        #expect(contents("pids/jobworker/\(id)/pids.max") == "untouched")
        #expect(contents("memory/jobworker/\(id)/memory.limit_in_bytes") == "\(2 << 30)")
        #expect(contents("memory/jobworker/\(id)/memory.memsw.limit_in_bytes") == "\(2 << 30)")
        #expect(contents("blkio/jobworker/\(id)/blkio.throttle.write_bps_device") == "254:0 1048576")
    }

    @Test("v1 usage and OOM count come from cpuacct, memory and blkio")
    func v1Accounting() throws {
        let cgroup = try makeV1().createCgroup(named: id, limits: limits)
        try write("5000000\n", "cpuacct/jobworker/\(id)/cpuacct.usage")
        try write("7000\n", "memory/jobworker/\(id)/memory.max_usage_in_bytes")
        try write("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n", "memory/jobworker/\(id)/memory.oom_control")
        try write(
            "254:0 Read 10\n254:0 Write 20\n254:0 Sync 30\n254:0 Total 30\n8:0 Read 99\nTotal 129\n",
            "blkio/jobworker/\(id)/blkio.throttle.io_service_bytes")
        #expect(
            cgroup.usage()
                == ResourceUsage(cpuMicroseconds: 5000, memoryPeakBytes: 7000, ioReadBytes: 10, ioWriteBytes: 20))
        #expect(cgroup.oomKills() == 1)
        // Killing members is covered on the real host, where the freezer exists.
        try write("", "freezer/jobworker/\(id)/cgroup.procs")
        #expect(cgroup.isEmpty)
        try write("1\n", "freezer/jobworker/\(id)/cgroup.procs")
        #expect(!cgroup.isEmpty)
    }
}

@Suite("cgroup host detection")
struct CgroupHostTests {
    static let hybridMounts = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
        38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """
    static let hybridSelf = """
        9:name=systemd:/
        8:pids:/
        7:blkio:/
        6:freezer:/
        4:memory:/process_api/1908
        2:cpuacct:/
        1:cpu:/
        0::/
        """

    @Test("hybrid v1: one hierarchy per controller, the worker's own memory cgroup kept")
    func hybrid() {
        let host = CgroupHost(mountInfo: Self.hybridMounts, processCgroups: Self.hybridSelf)
        #expect(host.v1.count == 6)
        #expect(host.v1Hierarchy(for: "memory")?.ownDirectory == "/sys/fs/cgroup/memory/process_api/1908")
        #expect(host.v1Hierarchy(for: "cpu")?.ownDirectory == "/sys/fs/cgroup/cpu")
        #expect(host.v2?.mountPoint == "/sys/fs/cgroup/unified")
    }

    @Test("co-mounted cpu,cpuacct share one hierarchy")
    func comounted() {
        let host = CgroupHost(
            mountInfo: "25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
            processCgroups: "3:cpu,cpuacct:/system.slice/jobworkerd.service\n")
        #expect(host.v1Hierarchy(for: "cpu") == host.v1Hierarchy(for: "cpuacct"))
        #expect(
            host.v1Hierarchy(for: "cpuacct")?.ownDirectory
                == "/sys/fs/cgroup/cpu,cpuacct/system.slice/jobworkerd.service")
    }

    @Test("pure v2: the unified mount and the worker's path")
    func unified() {
        let host = CgroupHost(
            mountInfo: "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
            processCgroups: "0::/system.slice/jobworkerd.service\n")
        #expect(host.v1.isEmpty)
        #expect(host.v2?.ownDirectory == "/sys/fs/cgroup/system.slice/jobworkerd.service")
    }
}

@Suite("resource policy")
struct ResourcePolicyTests {
    let policy = ResourcePolicy(
        defaults: ResourceLimits(cpuMillis: 1000, memoryBytes: 1 << 30, maxProcesses: 1024),
        ceilings: ResourceLimits(memoryBytes: 8 << 30, ioWriteBytesPerSecond: 100 << 20))

    @Test("unset limits get the default; where the default is unlimited, the ceiling")
    func defaults() throws {
        let applied = try policy.apply(ResourceLimits(cpuMillis: 500))
        #expect(
            applied
                == ResourceLimits(
                    cpuMillis: 500, memoryBytes: 1 << 30, ioWriteBytesPerSecond: 100 << 20, maxProcesses: 1024))
    }

    @Test("a request above a ceiling is refused, naming the limit and the ceiling")
    func ceiling() {
        #expect(throws: JobWorkerError(.invalidArgument, "memory limit 64Gi exceeds the server ceiling 8Gi")) {
            try policy.apply(ResourceLimits(memoryBytes: 64 << 30))
        }
        #expect(throws: JobWorkerError(.invalidArgument, "io write limit 200Mi/s exceeds the server ceiling 100Mi/s")) {
            try policy.apply(ResourceLimits(ioWriteBytesPerSecond: 200 << 20))
        }
        #expect(throws: Never.self) { try policy.apply(ResourceLimits(memoryBytes: 8 << 30)) }
    }

    @Test("a default above its ceiling is a configuration error")
    func invalidPolicy() {
        let broken = ResourcePolicy(
            defaults: ResourceLimits(cpuMillis: 4000), ceilings: ResourceLimits(cpuMillis: 2000))
        #expect(throws: JobWorkerError(.invalidArgument, "default cpu limit 4000m exceeds its ceiling 2000m")) {
            try broken.validate()
        }
    }
}
