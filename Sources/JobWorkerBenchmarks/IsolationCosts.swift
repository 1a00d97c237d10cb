import Foundation
import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// `JobWorkerBenchmarks isolation-costs [STARTS]`: what each part of a job's confinement adds to
/// an isolated start → exit. One worker per variant (each with its own state directory and
/// parent cgroup), measured in turn, round after round, so that every variant sees the same
/// machine; p50 and p99 of STARTS starts (default 600) per variant.
func measureIsolationCosts(_ arguments: [String]) async throws {
    let starts = arguments.first.flatMap(Int.init) ?? 600
    let directory = "/dev/shm/jobworker-costs-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let variants: [(String, (inout WorkerConfiguration) -> Void)] = [
        ("everything (the default)", { _ in }),
        ("without the system-call filter", { $0.systemCallFilter = .off }),
        ("with the host's filesystem", { $0.jobFilesystem.isPrivate = false }),
        ("as one fixed user", { $0.jobUsers = .fixed(.nobody) }),
        ("without the output cap", { $0.policy.maximumOutputBytes = nil }),
        (
            "none of these",
            {
                $0.systemCallFilter = .off
                $0.jobFilesystem.isPrivate = false
                $0.jobUsers = .fixed(.nobody)
                $0.policy.maximumOutputBytes = nil
            }
        ),
    ]
    var workers: [Worker] = []
    for (index, variant) in variants.enumerated() {
        var configuration = benchmarkConfiguration(stateDirectory: directory + "/\(index)")
        configuration.cgroupParentName = "jobworker-bench-costs-\(getpid())-\(index)"
        variant.1(&configuration)
        workers.append(try await Worker(configuration: configuration))
    }
    var samples = Array(repeating: [Duration](), count: variants.count)
    let rounds = 6
    let clock = ContinuousClock()
    for _ in 0..<rounds {
        for (index, worker) in workers.enumerated() {
            await worker.waitUntilInitsParked()
            for _ in 0..<(starts / rounds) {
                let began = clock.now
                let id = try await worker.start(command: "/bin/true", owner: "bench").id
                _ = try await worker.waitUntilEnded(id)
                samples[index].append(clock.now - began)
            }
        }
    }
    print("| isolated start → exit, /bin/true (\(starts) starts each) | p50 ms | p99 ms |")
    print("|---|---|---|")
    for (index, variant) in variants.enumerated() {
        let sorted = samples[index].sorted()
        func at(_ fraction: Double) -> Double {
            sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))].milliseconds
        }
        print("| \(variant.0) | \(String(format: "%.3f", at(0.5))) | \(String(format: "%.3f", at(0.99))) |")
    }
    for worker in workers { await worker.shutdown(gracePeriod: .zero) }
}
