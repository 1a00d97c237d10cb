import ArgumentParser
import JobWorkerAPI

/// Resource limit flags, in the units operators use with docker and kubectl. A flag not given
/// leaves the server's default.
struct LimitOptions: ParsableArguments {
    @Option(help: "CPU: CPUs (0.5, 2) or millicores (500m).", transform: parseCPU)
    var cpu: UInt32?

    @Option(help: "Memory: bytes, or with a unit (256M, 1Gi).", transform: parseBytes)
    var memory: UInt64?

    @Option(help: "Disk reads per second, in bytes (10M).", transform: parseBytes)
    var ioRead: UInt64?

    @Option(help: "Disk writes per second, in bytes (10M).", transform: parseBytes)
    var ioWrite: UInt64?

    @Option(help: "Disk read operations per second.")
    var ioReadIops: UInt64?

    @Option(help: "Disk write operations per second.")
    var ioWriteIops: UInt64?

    @Option(help: "Most processes (and threads) the job may have at once.")
    var maxProcesses: UInt32?

    var message: Jobworker_V1_ResourceLimits {
        .with {
            $0.cpuMillis = cpu ?? 0
            $0.memoryBytes = memory ?? 0
            $0.ioReadBytesPerSecond = ioRead ?? 0
            $0.ioWriteBytesPerSecond = ioWrite ?? 0
            $0.ioReadOpsPerSecond = ioReadIops ?? 0
            $0.ioWriteOpsPerSecond = ioWriteIops ?? 0
            $0.maxProcesses = maxProcesses ?? 0
        }
    }

    func validate() throws {
        let given: [(String, UInt64?)] = [
            ("--cpu", cpu.map(UInt64.init)), ("--memory", memory), ("--io-read", ioRead), ("--io-write", ioWrite),
            ("--io-read-iops", ioReadIops), ("--io-write-iops", ioWriteIops),
            ("--max-processes", maxProcesses.map(UInt64.init)),
        ]
        for (flag, value) in given where value == 0 {
            throw ValidationError("\(flag) must be more than 0 (leave it out for the server's default)")
        }
    }
}

private func parseCPU(_ text: String) throws -> UInt32 {
    guard let value = Quantity.cpuMillis(text) else {
        throw ValidationError("\"\(text)\" is not a CPU amount (0.5, 2, 500m)")
    }
    return value
}

private func parseBytes(_ text: String) throws -> UInt64 {
    guard let value = Quantity.bytes(text) else {
        throw ValidationError("\"\(text)\" is not a size (256M, 1Gi, 1048576)")
    }
    return value
}
