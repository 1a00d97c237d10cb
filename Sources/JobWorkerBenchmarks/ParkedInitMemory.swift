import Foundation
import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// `JobWorkerBenchmarks parked-inits [COUNT] [STATE-DIR]`: what a parked init costs in memory.
/// Parks COUNT inits (default 32) with the default isolation and reports, per init, its own
/// proportional set size (smaps_rollup) and what its job cgroup is charged (cgroup v1
/// `memory.usage_in_bytes`, v2 `memory.current`: the init's pages and the kernel memory
/// allocated once it joined, its mounts and tmpfs among them; not the namespaces themselves,
/// which exist before it joins).
func measureParkedInits(_ arguments: [String]) async throws {
    let count = arguments.first.flatMap(Int.init) ?? 32
    let directory = arguments.count > 1 ? arguments[1] : "/dev/shm/jobworker-parked-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = benchmarkConfiguration(stateDirectory: directory)
    configuration.prestartedInits = count
    configuration.cgroupParentName = "jobworker-bench-parked-\(getpid())"
    let worker = try await Worker(configuration: configuration)
    await worker.waitUntilInitsParked()
    let inits = childInits()
    let pss = inits.map(proportionalSetKiB).reduce(0, +)
    let charged = inits.compactMap { chargedBytes(of: $0, v2: worker.cgroupMode == .v2) }
    print("| parked inits | \(inits.count) |")
    print("|---|---|")
    print(
        "| init PSS, KiB each (smaps_rollup) | \(String(format: "%.0f", Double(pss) / Double(max(1, inits.count)))) |")
    print(
        "| charged to its job cgroup, KiB each | \(String(format: "%.0f", Double(charged.reduce(0, +)) / 1024 / Double(max(1, charged.count)))) |"
    )
    await worker.shutdown(gracePeriod: .zero)
}

/// The memory charged to the cgroup `pid` is in (its memory hierarchy's, on v1).
private func chargedBytes(of pid: Int32, v2: Bool) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { continue }
        let file: String
        if v2, fields[1].isEmpty {
            file = "/sys/fs/cgroup" + fields[2] + "/memory.current"
        } else if !v2, fields[1].split(separator: ",").contains("memory") {
            file = "/sys/fs/cgroup/memory" + fields[2] + "/memory.usage_in_bytes"
        } else {
            continue
        }
        return (try? String(contentsOfFile: file, encoding: .utf8)).flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
    return nil
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
