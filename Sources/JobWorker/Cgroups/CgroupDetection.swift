/// Chooses the cgroup backend for this host: v2 when the unified hierarchy carries the memory
/// controller (pure v2 hosts), v1 otherwise (legacy and hybrid hosts, where cgroup2 is mounted
/// but empty).
func makeCgroupBackend(_ configuration: WorkerConfiguration) throws(JobWorkerError) -> any CgroupBackend {
    let devices = try ioDevices(configuration)
    let host = CgroupHost.current()
    if let unified = host.v2, host.v1Hierarchy(for: "memory") == nil {
        return try CgroupV2(hierarchy: unified, devices: devices, parentName: configuration.cgroupParentName)
    }
    guard !host.v1.isEmpty else {
        throw JobWorkerError(
            .systemFailure,
            "no cgroup file system is mounted: mount cgroup2 at /sys/fs/cgroup, or run with resource control disabled")
    }
    return try CgroupV1(host: host, devices: devices, parentName: configuration.cgroupParentName)
}

/// The configured IO devices, or the whole disks backing `/` and the state directory.
private func ioDevices(_ configuration: WorkerConfiguration) throws(JobWorkerError) -> [BlockDevice] {
    if let paths = configuration.ioDevices {
        var devices: [BlockDevice] = []
        for path in paths {
            devices.append(try BlockDevice(devicePath: path))
        }
        return devices
    }
    let disks = ["/", configuration.stateDirectory].compactMap { BlockDevice.disk(backing: $0) }
    return Array(Set(disks)).sorted { ($0.major, $0.minor) < ($1.major, $1.minor) }
}
