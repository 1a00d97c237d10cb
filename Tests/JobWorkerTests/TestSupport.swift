import CLinuxEvents
import Foundation
import GRDB
import JobWorkerTestPrograms
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// Where the build put the test binary, jobworker-init and the test helper.
let buildDirectory = TestPrograms.buildDirectory

/// The test helper program, as a copy that the jobs' user may run.
let helperPath = TestPrograms.helperPath

/// A fresh state directory under the system temp directory, unique per call.
func makeStateDirectory() throws -> String {
    let temporary = URL(fileURLWithPath: NSTemporaryDirectory()).standardizedFileURL.path
    var template = Array((temporary + "/jobworker-test-XXXXXX").utf8CString)
    let path = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) })
    return String(cString: path)
}

/// A fresh directory (0755) that jobs can see (`TestPrograms.makeJobVisibleDirectory`).
func makeJobVisibleDirectory() throws -> String { try TestPrograms.makeJobVisibleDirectory() }

/// What the test process may do. Tests that need root and cgroups run when they are available,
/// and always under CI (CI=true), where their absence is a failure, never a skip.
enum Privileges {
    static let isRoot = geteuid() == 0
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"
    static let canUseCgroups = isRoot || isCI
    static let reason = "requires root, cgroups and namespaces (runs always under CI=true)"
}

/// A worker on `directory` as the tests run one: the host's real cgroups and namespaces when the
/// tests may, under a parent cgroup of its own so that parallel tests never touch each other's jobs.
func testConfiguration(_ directory: String) -> WorkerConfiguration {
    var configuration = WorkerConfiguration(stateDirectory: directory)
    configuration.resourceControl = Privileges.canUseCgroups ? .cgroups : .disabled
    configuration.isolation = Privileges.canUseCgroups ? .namespaces : .none
    configuration.cgroupParentName = "jobworker-test-\(JobID().shortDescription)"
    if !Privileges.isRoot { configuration.jobUsers = .worker }  // only root may start jobs as another user
    return configuration
}

/// Runs `body` with a new worker, always shutting it down and removing its state afterwards.
/// The worker uses the host's real cgroups when the tests may, each worker under a parent cgroup
/// of its own so that parallel tests never touch each other's jobs.
func withWorker<Result>(
    _ configure: (inout WorkerConfiguration) -> Void = { _ in },
    _ body: (Worker) async throws -> Result
) async throws -> Result {
    let directory = try makeStateDirectory()
    var configuration = testConfiguration(directory)
    configure(&configuration)
    let worker = try await Worker(configuration: configuration)
    do {
        let result = try await body(worker)
        await worker.shutdown(gracePeriod: .zero)
        try? FileManager.default.removeItem(atPath: directory)
        return result
    } catch {
        await worker.shutdown(gracePeriod: .zero)
        try? FileManager.default.removeItem(atPath: directory)
        throw error
    }
}

extension Worker {
    /// Starts the test helper in `mode`.
    func startHelper(
        _ mode: String, _ arguments: String..., owner: String = "tester", limits: ResourceLimits = ResourceLimits()
    ) async throws -> JobStatus {
        try await start(command: helperPath, arguments: [mode] + arguments, owner: owner, limits: limits)
    }

    /// All of a job's output, from `offset` to the end of the job.
    func collectOutput(of id: JobID, from offset: UInt64 = 0) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in try output(of: id, from: offset) {
            bytes += chunk
        }
        return bytes
    }

    /// Reads the job's output until it contains `marker`, and returns what was read.
    func waitForOutput(of id: JobID, containing marker: String) async throws -> String {
        var text = ""
        for try await chunk in try output(of: id) {
            text += String(decoding: chunk, as: UTF8.self)
            if text.contains(marker) { return text }
        }
        Issue.record("job \(id) ended without printing \"\(marker)\"; it printed: \(text)")
        return text
    }
}

/// The expected test-helper pattern: byte i is i mod 251.
func patternByte(at index: UInt64) -> UInt8 { UInt8(index % 251) }

/// Descriptors this process has open.
///
/// `excludingTimers` leaves out timerfds: libdispatch creates its timer descriptors (behind
/// `Task.sleep`) lazily, once per process and clock, and keeps them — three more workers after
/// the first created none.
func openDescriptorCount(excludingTimers: Bool = false) throws -> Int {
    try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter { entry in
        !excludingTimers
            || (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry))
                != "anon_inode:[timerfd]"
    }.count
}

/// PIDs of this process's children that are zombies (exited, not reaped).
func zombieChildren() -> [Int32] {
    let me = getpid()
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry),
            let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "comm)" come: state, ppid, ...
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, fields[0] == "Z", Int32(fields[1]) == me else { return nil }
        return pid
    }
}

/// Resident set size of this process, in bytes.
func residentMemory() throws -> UInt64 {
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
    let kilobytes = try #require(UInt64(line.split(separator: " ")[1]))
    return kilobytes * 1024
}

/// Waits until process `pid` has ended, or `timeout` passes. Event-driven: a pidfd, polled once
/// by poll(2) with the deadline. Returns true if it ended (or was already gone).
func waitForProcessToEnd(_ pid: Int32, timeout: Duration) -> Bool {
    let pidfd = linux_pidfd_open(pid)
    guard pidfd >= 0 else { return errno == ESRCH }
    defer { close(pidfd) }
    var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
    let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
    return poll(&descriptor, 1, milliseconds) == 1
}

/// Host PIDs of the processes whose command line contains `marker` as an argument. Jobs in a PID
/// namespace only know their namespace's PIDs; a unique marker argument finds them from outside.
func hostProcesses(withArgument marker: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry),
            let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")
        else { return nil }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.contains(marker) ? pid : nil
    }
}

/// A unique argument to find a job's processes by.
func makeMarker() -> String { "marker-\(JobID())" }

/// Marks a migration as applied without running it: what a later version's migration leaves in
/// a job database.
func recordMigration(_ identifier: String, inDatabaseAt path: String) throws {
    let database = try DatabaseQueue(path: path)
    try database.write { db in
        try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES (?)", arguments: [identifier])
    }
}

extension WorkerConfiguration {
    /// For tests that start hundreds of jobs of one owner at once: no per-owner bound.
    mutating func liftOwnerQuotas() {
        policy.maximumRunningJobsPerOwner = nil
        policy.startRatePerOwner = nil
    }
}

extension Worker {
    /// Returns once the job has ended and its end is on record (a little after `waitUntilEnded`).
    func waitUntilRecorded(_ id: JobID) async throws {
        if case .live(let job) = try table.entry(id) { await job.waitUntilEndRecorded() }
    }
}
