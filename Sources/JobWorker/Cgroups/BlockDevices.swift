#if canImport(Glibc)
    import Glibc
#endif

/// A whole block device, as cgroup IO limits name it ("MAJ:MIN").
public struct BlockDevice: Sendable, Hashable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    public var description: String { "\(major):\(minor)" }

    /// Splits a dev_t as glibc's major() and minor() do.
    init(deviceNumber number: UInt64) {
        major = UInt32(truncatingIfNeeded: ((number >> 32) & 0xffff_f000) | ((number >> 8) & 0x0000_0fff))
        minor = UInt32(truncatingIfNeeded: ((number >> 12) & 0xffff_ff00) | (number & 0x0000_00ff))
    }

    /// The device node at `path` (e.g. /dev/vda). A partition is refused: IO limits want the disk.
    public init(devicePath path: String) throws(JobWorkerError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw JobWorkerError(.invalidArgument, "IO device \(path) does not exist")
        }
        guard info.st_mode & S_IFMT == S_IFBLK else {
            throw JobWorkerError(.invalidArgument, "IO device \(path) is not a block device")
        }
        self.init(deviceNumber: UInt64(info.st_rdev))
        guard let disk = BlockDevice.disk(containing: self), disk == self else {
            throw JobWorkerError(.invalidArgument, "IO device \(path) is a partition: name its whole disk")
        }
    }

    /// The whole disk holding the file system of `path`, or nil for file systems on no block
    /// device (tmpfs, overlay, ...).
    static func disk(backing path: String) -> BlockDevice? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let device = BlockDevice(deviceNumber: UInt64(info.st_dev))
        return disk(containing: device)
    }

    /// The disk of a partition, or the device itself when it is a whole disk; nil if the kernel
    /// knows no block device with this number.
    static func disk(containing device: BlockDevice) -> BlockDevice? {
        let sysfs = "/sys/dev/block/\(device)"
        guard CgroupFiles.exists(sysfs) else { return nil }
        guard CgroupFiles.exists(sysfs + "/partition") else { return device }
        guard let text = CgroupFiles.read(sysfs + "/../dev") else { return nil }
        let parts = text.trimmingWhitespace().split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else { return nil }
        return BlockDevice(major: major, minor: minor)
    }
}
