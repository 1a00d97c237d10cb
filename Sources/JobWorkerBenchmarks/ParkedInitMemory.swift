import Foundation
import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// `JobWorkerBenchmarks parked-inits [COUNT] [STATE-DIR]`: what a parked init costs in memory.
/// Parks COUNT inits (default 32) with the default isolation and reports, per init, its own
/// proportional set size (smaps_rollup) and the host's memory it took in all (MemAvailable
/// before and after: the namespaces, mounts, cgroup and page tables included).
func measureParkedInits(_ arguments: [String]) async throws {
    let count = arguments.first.flatMap(Int.init) ?? 32
    let directory = arguments.count > 1 ? arguments[1] : "/dev/shm/jobworker-parked-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let availableBefore = try memoryAvailableKiB()
    var configuration = benchmarkConfiguration(stateDirectory: directory)
    configuration.prestartedInits = count
    configuration.cgroupParentName = "jobworker-bench-parked-\(getpid())"
    let worker = try await Worker(configuration: configuration)
    await worker.waitUntilInitsParked()
    let availableAfter = try memoryAvailableKiB()
    let inits = childInits()
    let pss = inits.map(proportionalSetKiB).reduce(0, +)
    print("| parked inits | \(inits.count) |")
    print("|---|---|")
    print(
        "| init PSS, KiB each (smaps_rollup) | \(String(format: "%.0f", Double(pss) / Double(max(1, inits.count)))) |")
    print(
        "| host memory, KiB each (MemAvailable before − after) | \(String(format: "%.0f", Double(availableBefore - availableAfter) / Double(max(1, inits.count)))) |"
    )
    await worker.shutdown(gracePeriod: .zero)
}

private func memoryAvailableKiB() throws -> Int {
    let text = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
    let line = text.split(separator: "\n").first { $0.hasPrefix("MemAvailable:") }!
    return Int(line.split(separator: " ")[1])!
}

/// The jobworker-init processes whose parent is this process.
private func childInits() -> [Int32] {
    let me = getpid()
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let name = stat[stat.index(after: stat.firstIndex(of: "(")!)..<close]
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        return name == "jobworker-init" && fields.count > 1 && Int32(fields[1]) == me
    }
}

private func proportionalSetKiB(of pid: Int32) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Pss:") })
    else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
}
