// Measures the JobWorker library beside what the host does without it, in one run:
// start latency beside posix_spawn, with and without a 1 GiB heap, and output delivery
// throughput to 1 and 50 readers beside `cat`. Run it in release mode:
//
//     swift run -c release JobWorkerBenchmarks [--quick] [--state-dir DIR]
//
// Results go to stdout as a Markdown table; BENCHMARKS.md records them.
import Foundation
import JobWorker
import JobWorkerAPI

#if canImport(Glibc)
    import Glibc
#endif

// The API is measured in child processes that run as jobworkerd and jobctl do, with Swift
// concurrency on SwiftNIO's event loops; the library is measured here on Swift's own executor,
// as a program embedding it would run it.
switch CommandLine.arguments.dropFirst().first {
case "start-client":
    RuntimeTuning.apply(eventLoops: 1)  // as jobctl
    try await runStartClient(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "stream-client":
    RuntimeTuning.apply(eventLoops: 1)  // as jobctl
    try await runStreamClient(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "stream-clients":
    try await runStreamClients(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "records-writer":
    try await runRecordsWriter(Array(CommandLine.arguments.dropFirst(2)))
case "isolation-costs":
    try await measureIsolationCosts(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "parked-inits":
    try await measureParkedInits(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "load-clients":
    try await runLoadClients(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "load-session":
    try await runLoadSession(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "load-client":
    RuntimeTuning.apply(eventLoops: 1)  // as jobctl
    try await runLoadClient(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "spec-starts":
    RuntimeTuning.apply()  // as jobworkerd
    try await runSpecStartBenchmark(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "streaming":
    RuntimeTuning.apply()  // as jobworkerd
    try await runStreamingBenchmark(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "mixed-load":
    RuntimeTuning.apply()  // as jobworkerd
    try await runMixedLoadBenchmark(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "metrics-overhead":
    try await runMetricsOverheadBenchmark(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "metrics-overhead-inprocess":
    RuntimeTuning.apply()  // as jobworkerd
    try await runInProcessMetricsOverheadBenchmark(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "metrics-side":
    RuntimeTuning.apply()  // as jobworkerd
    try await runMetricsSide(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
case "api":
    RuntimeTuning.apply()  // as jobworkerd
    try await runAPIBenchmarks(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
default:
    break
}
let quick = CommandLine.arguments.contains("--quick")
let startIterations = quick ? 200 : 2000
let outputFileBytes: UInt64 = (quick ? 64 : 256) * 1024 * 1024

/// Latency samples, reported as percentiles in milliseconds.
struct Samples {
    var values: [Duration] = []

    mutating func measure(_ body: () async throws -> Void) async rethrows {
        let clock = ContinuousClock()
        let start = clock.now
        try await body()
        values.append(clock.now - start)
    }

    func percentile(_ fraction: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let index = min(sorted.count - 1, Int(Double(sorted.count) * fraction))
        return sorted[index].milliseconds
    }

    var summary: String { String(format: "%.3f | %.3f", percentile(0.5), percentile(0.99)) }
}

extension Duration {
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
    var seconds: Double { milliseconds / 1000 }
}

func row(_ name: String, _ value: String) { print("| \(name) | \(value) |") }

// MARK: - Baselines run by hand with posix_spawn

/// posix_spawn of `path`; returns the pid (posix_spawn returns once the child has exec'd).
func spawn(_ path: String, _ arguments: [String] = [], stdout: Int32? = nil) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let stdout { posix_spawn_file_actions_adddup2(&actions, stdout, 1) }
    var pid = pid_t()
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    let result = posix_spawn(&pid, path, &actions, nil, argv, environ)
    precondition(result == 0, "posix_spawn \(path): \(String(cString: strerror(result)))")
    return pid
}

func waitFor(_ pid: pid_t) {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
}

// MARK: - Start latency

/// Starts /bin/true `count` times, each once the previous one has ended, after a pause of
/// `pause` (none: back to back).
func measureStarts(_ worker: Worker, count: Int = startIterations, pause: Duration = .zero) async throws
    -> (exec: Samples, exit: Samples)
{
    var exec = Samples()
    var exit = Samples()
    for _ in 0..<count {
        if pause > .zero { try await Task.sleep(for: pause) }
        var id: JobID?
        try await exit.measure {
            try await exec.measure {
                id = try await worker.start(
                    command: "/bin/true", owner: "bench",
                    limits: worker.configuration.resourceControl == .disabled ? ResourceLimits() : measuredStartLimits
                ).id
            }
            _ = try await worker.waitUntilEnded(id!)
        }
    }
    return (exec, exit)
}

func measureBareSpawns() -> (exec: Samples, exit: Samples) {
    var exec = Samples()
    var exit = Samples()
    let clock = ContinuousClock()
    for _ in 0..<startIterations {
        let start = clock.now
        let pid = spawn("/bin/true")
        exec.values.append(clock.now - start)
        waitFor(pid)
        exit.values.append(clock.now - start)
    }
    return (exec, exit)
}

/// `unshare` with the five namespaces and a fresh /proc, started and reaped like the baseline,
/// `count` times, after a pause of `pause` each time (none: back to back).
func measureUnshare(count: Int = startIterations, pause: Duration = .zero) async throws -> Samples {
    var samples = Samples()
    let clock = ContinuousClock()
    let arguments = ["--pid", "--mount", "--net", "--uts", "--ipc", "--fork", "--mount-proc", "/bin/true"]
    for _ in 0..<count {
        if pause > .zero { try await Task.sleep(for: pause) }
        let start = clock.now
        waitFor(spawn("/usr/bin/unshare", arguments))
        samples.values.append(clock.now - start)
    }
    return samples
}

/// Allocates and touches 1 GiB so the worker's resident memory is that large.
func holdOneGiB() -> UnsafeMutableRawPointer {
    let size = 1 << 30
    let memory = malloc(size)!
    memset(memory, 1, size)
    return memory
}

// MARK: - Output throughput

func measureReaders(_ worker: Worker, job: JobID, readers: Int) async throws -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<readers {
            group.addTask {
                var bytes = 0
                for try await chunk in try worker.output(of: job) { bytes += chunk.count }
                return bytes
            }
        }
        return try await group.reduce(0, +)
    }
    precondition(total == readers * Int(outputFileBytes), "readers got \(total) bytes")
    return Double(total) / (clock.now - start).seconds / 1e6
}

func measureCat(_ path: String) -> Double {
    let devNull = open("/dev/null", O_WRONLY)
    defer { close(devNull) }
    let clock = ContinuousClock()
    let start = clock.now
    waitFor(spawn("/bin/cat", [path], stdout: devNull))
    return Double(outputFileBytes) / (clock.now - start).seconds / 1e6
}

// MARK: - Main

// tmpfs by default: on the ext4 disk of these machines, creating a file now and then waits for a
// journal commit (p50 of identical rounds varied 0.29–0.96 ms on /var/tmp, 0.15 ms on tmpfs;
// /tmp is worse still, ≈ 0.8 ms per create). `--state-dir DIR` measures another file system.
let stateDirectory =
    CommandLine.arguments.firstIndex(of: "--state-dir").map {
        CommandLine.arguments[$0 + 1] + "/jobworker-bench-\(getpid())"
    }
    ?? "/dev/shm/jobworker-bench-\(getpid())"
defer { try? FileManager.default.removeItem(atPath: stateDirectory) }
// Each worker has a state directory of its own (a worker locks its directory).
var configuration = benchmarkConfiguration(stateDirectory: stateDirectory + "/plain")
configuration.resourceControl = .disabled
configuration.isolation = .none
let worker = try await Worker(configuration: configuration)
configuration.stateDirectory = stateDirectory + "/limited"
configuration.resourceControl = .cgroups
configuration.cgroupParentName = "jobworker-bench-\(getpid())"
let limitedWorker = try await Worker(configuration: configuration)
configuration.stateDirectory = stateDirectory + "/isolated"
configuration.cgroupParentName = "jobworker-bench-isolated-\(getpid())"
configuration.isolation = .namespaces
let isolatedWorker = try await Worker(configuration: configuration)

print("jobworker benchmarks: \(startIterations) starts, output file \(outputFileBytes >> 20) MiB")
print("| measurement | p50 ms | p99 ms |")
print("|---|---|---|")
// Warm up page cache and code paths.
_ = try await measureStarts(worker)
let bare = measureBareSpawns()
let library = try await measureStarts(worker)
let limited = try await measureStarts(limitedWorker)
let isolated = try await measureStarts(isolatedWorker)
let isolatedOnDemand = isolatedWorker.initsPreparedOnDemand
let unshare = try await measureUnshare()
// The same at a steady 100 starts a second or less: the kernel's work after each end
// (namespace and cgroup teardown) is then mostly done before the next start.
let pacedCount = quick ? 100 : 500
let pacedIsolated = try await measureStarts(isolatedWorker, count: pacedCount, pause: .milliseconds(10))
let pacedUnshare = try await measureUnshare(count: pacedCount, pause: .milliseconds(10))
row("posix_spawn /bin/true, until exec'd", bare.exec.summary)
row("posix_spawn /bin/true, until reaped", bare.exit.summary)
row("Worker.start /bin/true, until exec'd", library.exec.summary)
row("Worker.start /bin/true, until reaped", library.exit.summary)
row("Worker.start /bin/true in a cgroup with limits, until exec'd", limited.exec.summary)
row("Worker.start /bin/true in a cgroup with limits, until reaped and removed", limited.exit.summary)
row("Worker.start /bin/true, namespaces + init + cgroup, until exec'd", isolated.exec.summary)
row("Worker.start /bin/true, namespaces + init + cgroup, until reaped and removed", isolated.exit.summary)
row("unshare --pid --mount --net --uts --ipc --fork --mount-proc /bin/true", unshare.summary)
row(
    "Worker.start, namespaces + init + cgroup, 10 ms pause before each start, until reaped and removed",
    pacedIsolated.exit.summary)
row("unshare …, 10 ms pause before each start", pacedUnshare.summary)
let heap = holdOneGiB()
let bareWithHeap = measureBareSpawns()
let libraryWithHeap = try await measureStarts(worker)
free(heap)
row("posix_spawn /bin/true, until exec'd, 1 GiB heap", bareWithHeap.exec.summary)
row("Worker.start /bin/true, until exec'd, 1 GiB heap", libraryWithHeap.exec.summary)
print(
    String(
        format: "\nstart p50 ratio (library / posix_spawn, until exec'd): %.2f; with 1 GiB heap vs without: %.2f",
        library.exec.percentile(0.5) / bare.exec.percentile(0.5),
        libraryWithHeap.exec.percentile(0.5) / library.exec.percentile(0.5)))
print(
    String(
        format: "cgroup cost at p50 (with limits - without): %.3f ms until exec'd, %.3f ms until reaped and removed",
        limited.exec.percentile(0.5) - library.exec.percentile(0.5),
        limited.exit.percentile(0.5) - library.exit.percentile(0.5)))
print(
    String(
        format: "full isolation vs unshare: p50 %.2fx; our p99 / our p50: %.2f",
        isolated.exit.percentile(0.5) / unshare.percentile(0.5),
        isolated.exit.percentile(0.99) / isolated.exit.percentile(0.5)))
print(
    String(
        format: "the same with a 10 ms pause before each start: p50 %.2fx; our p99 / our p50: %.2f",
        pacedIsolated.exit.percentile(0.5) / pacedUnshare.percentile(0.5),
        pacedIsolated.exit.percentile(0.99) / pacedIsolated.exit.percentile(0.5)))
print("isolated starts that found no parked init (prepared their own): \(isolatedOnDemand) of \(startIterations)")

// Output: a finished job's log, in the page cache, read by 1 and by 50 concurrent readers.
let writer = try await worker.start(
    command: "/usr/bin/head", arguments: ["-c", "\(outputFileBytes)", "/dev/zero"], owner: "bench")
_ = try await worker.waitUntilEnded(writer.id)
let logPath = stateDirectory + "/plain/output/\(writer.id).log"
_ = measureCat(logPath)
let cat = measureCat(logPath)
let one = try await measureReaders(worker, job: writer.id, readers: 1)
let fifty = try await measureReaders(worker, job: writer.id, readers: 50)
print("\n| output delivery (\(outputFileBytes >> 20) MiB log) | MB/s | share of cat |")
print("|---|---|---|")
print(String(format: "| cat to /dev/null | %.0f | 1.00 |", cat))
print(String(format: "| 1 reader | %.0f | %.2f |", one, one / cat))
print(String(format: "| 50 readers together | %.0f | %.2f |", fifty, fifty / cat))
await worker.shutdown(gracePeriod: .zero)
await limitedWorker.shutdown(gracePeriod: .zero)
await isolatedWorker.shutdown(gracePeriod: .zero)

// The API, in a process of its own (see the top), compared with the isolated start above.
let api = Process()
api.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
api.arguments = [
    "api", stateDirectory + "/api", "\(startIterations)", "\(outputFileBytes)", "\(isolated.exec.percentile(0.5))",
]
fflush(nil)  // our tables first, then the child's
try api.run()
api.waitUntilExit()
precondition(api.terminationStatus == 0, "the API benchmark failed")
