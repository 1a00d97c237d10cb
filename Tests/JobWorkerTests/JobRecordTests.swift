import Foundation
import GRDB
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// The durable job records: what a restarted worker knows about the jobs of the previous run.
@Suite("Job records", .timeLimit(.minutes(2)))
struct JobRecordTests {
    /// A worker configuration on `directory` whose cgroups sit under one parent for every worker
    /// of the test, as consecutive runs of a server do.
    func configuration(_ directory: String, parent: String) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.resourceControl = Privileges.canUseCgroups ? .cgroups : .disabled
        configuration.isolation = Privileges.canUseCgroups ? .namespaces : .none
        configuration.cgroupParentName = parent
        return configuration
    }

    @Test("every job, its exact end and its output survive a restart of the worker")
    func survivesRestart() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = configuration(directory, parent: "jobworker-test-\(JobID().shortDescription)")

        let first = try await Worker(configuration: configuration)
        let exited = try await first.startHelper("exit", "3")
        let signaled = try await first.startHelper("signal", "9", owner: "bob")
        let printed = try await first.startHelper("pattern", "300000")
        let stopped = try await first.startHelper("trap-term")
        for job in [exited, signaled, printed] { _ = try await first.waitUntilEnded(job.id) }
        await first.shutdown(gracePeriod: .seconds(5))  // stops the trap-term job
        let recorded = first.list()
        #expect(recorded.map(\.id) == [stopped.id, printed.id, signaled.id, exited.id])

        let second = try await Worker(configuration: configuration)
        let restored = second.list()
        #expect(restored.map(\.id) == recorded.map(\.id))
        for (before, after) in zip(recorded, restored) {
            #expect(after.state == before.state)
            #expect(after.termination == before.termination)
            #expect(after.owner == before.owner && after.command == before.command)
            #expect(after.arguments == before.arguments && after.executablePath == before.executablePath)
            #expect(after.limits == before.limits && after.usage == before.usage)
            #expect(after.outputBytes == before.outputBytes)
            // To the nanosecond: the store keeps integers.
            #expect(after.startedAt == before.startedAt)
            #expect(after.endedAt != nil && after.endedAt == before.endedAt)
        }
        #expect(try second.status(of: exited.id).exitCode == 3)
        #expect(try second.status(of: signaled.id).signal == 9)
        #expect(try second.status(of: stopped.id).state == .stopped)
        let output = try await second.collectOutput(of: printed.id)
        #expect(output.count == 300_000)
        #expect(output.enumerated().allSatisfy { $0.element == UInt8($0.offset % 251) })
        #expect(try await second.collectOutput(of: printed.id, from: 299_990).count == 10)
        #expect(try await second.stop(exited.id).exitCode == 3)  // ended already: unchanged
        #expect(throws: JobWorkerError.self) { try second.output(of: printed.id, from: 300_001) }

        // New jobs go on top, and are recorded as well.
        let third = try await second.startHelper("exit", "0")
        _ = try await second.waitUntilEnded(third.id)
        #expect(second.list().map(\.id) == [third.id] + recorded.map(\.id))
        await second.shutdown(gracePeriod: .zero)
        let again = try await Worker(configuration: configuration)
        #expect(again.list().map(\.id) == [third.id] + recorded.map(\.id))
        await again.shutdown(gracePeriod: .zero)
    }

    @Test("retention by size deletes the oldest finished jobs with their output, never a running job")
    func retentionBySize() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = configuration(directory, parent: "jobworker-test-\(JobID().shortDescription)")
        configuration.policy.retention = RetentionPolicy(maximumAge: nil, maximumOutputBytes: 250_000)
        let first = try await Worker(configuration: configuration)
        let big = try await first.start(
            command: "/bin/sh", arguments: ["-c", "head -c 300000 /dev/zero; echo; exec \(helperPath) sleep"],
            owner: "tester")
        var seen = 0
        for try await chunk in try first.output(of: big.id) {
            seen += chunk.count
            if seen > 300_000 { break }  // all of it is written: the job now waits
        }
        var finished: [JobID] = []
        for _ in 0..<4 {
            let job = try await first.startHelper("pattern", "100000")
            _ = try await first.waitUntilEnded(job.id)
            finished.append(job.id)
        }
        await first.shutdown(leavingJobsRunning: true)  // returns once every end is on record

        let second = try await Worker(configuration: configuration)
        // 400,000 finished bytes against 250,000: the two oldest finished went; the running job,
        // older and larger than any, stayed.
        #expect(second.list().map(\.id) == [finished[3], finished[2], big.id])
        #expect(try second.status(of: big.id).state == .running)
        for id in finished.prefix(2) {
            #expect(throws: JobWorkerError.self) { try second.status(of: id) }
            #expect(!FileManager.default.fileExists(atPath: directory + "/output/\(id).log"))
        }
        #expect(try await second.collectOutput(of: finished[2]).count == 100_000)
        await second.shutdown(gracePeriod: .zero)
    }

    @Test("a shutdown leaving jobs running completes the stops in progress, within its grace period")
    func keepJobsCompletesStops() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = configuration(directory, parent: "jobworker-test-\(JobID().shortDescription)")
        let first = try await Worker(configuration: configuration)
        let kept = try await first.startHelper("sleep")
        let stopping = try await first.startHelper("note-term")
        _ = try await first.waitForOutput(of: stopping.id, containing: "ready")
        let stop = Task { try await first.stop(stopping.id, gracePeriod: .seconds(3600)) }
        _ = try await first.waitForOutput(of: stopping.id, containing: "noted SIGTERM")
        await first.shutdown(gracePeriod: .milliseconds(100), leavingJobsRunning: true)
        let stopped = try first.status(of: stopping.id)
        #expect(stopped.state == .stopped && stopped.termination == .signaled(SIGKILL))
        stop.cancel()  // the stop's caller returns now, whether or not the job has ended
        _ = try await stop.value

        let second = try await Worker(configuration: configuration)
        #expect(try second.status(of: stopping.id).state == .stopped)
        #expect(try second.status(of: kept.id).state == .running)
        await second.shutdown(gracePeriod: .zero)
    }

    @Test("retention by age deletes finished jobs past it at startup, and keeps a running one")
    func retentionByAge() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = configuration(directory, parent: "jobworker-test-\(JobID().shortDescription)")
        configuration.policy.retention = RetentionPolicy(maximumAge: nil, maximumOutputBytes: nil)
        let first = try await Worker(configuration: configuration)
        let old = try await first.startHelper("exit", "0")
        _ = try await first.waitUntilEnded(old.id)
        let running = try await first.startHelper("sleep")
        await first.shutdown(leavingJobsRunning: true)

        // A restart with a one-millisecond limit: the finished job ended longer ago than that.
        configuration.policy.retention = RetentionPolicy(maximumAge: .milliseconds(1), maximumOutputBytes: nil)
        let second = try await Worker(configuration: configuration)
        #expect(second.list().map(\.id) == [running.id])
        #expect(!FileManager.default.fileExists(atPath: directory + "/output/\(old.id).log"))
        await second.shutdown(gracePeriod: .zero)
        let third = try await Worker(configuration: configuration)  // the deletion is on record too
        #expect(!third.list().contains { $0.id == old.id })
        await third.shutdown(gracePeriod: .zero)
    }

    @Test("200 concurrent starts are all recorded")
    func concurrentStarts() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = configuration(directory, parent: "jobworker-test-\(JobID().shortDescription)")
        configuration.liftOwnerQuotas()  // one owner's 200 starts at once
        let first = try await Worker(configuration: configuration)
        let started = try await withThrowingTaskGroup(of: JobID.self) { group in
            for index in 0..<200 {
                group.addTask { try await first.startHelper("exit", "\(index % 100)").id }
            }
            return try await group.reduce(into: Set<JobID>()) { $0.insert($1) }
        }
        for id in started { _ = try await first.waitUntilEnded(id) }
        let ended = first.list()
        await first.shutdown(gracePeriod: .zero)

        let second = try await Worker(configuration: configuration)
        let restored = second.list()
        await second.shutdown(gracePeriod: .zero)
        #expect(restored.count == 200)
        #expect(Set(restored.map(\.id)) == started)
        #expect(restored.map(\.id) == ended.map(\.id))  // the same order
        #expect(restored.allSatisfy { $0.state == .exited })
        #expect(Set(restored.compactMap(\.exitCode)) == Set((0..<100).map { Int32($0) }))
    }

    @Test("a database that is not one stops the worker at startup, and is left as it was")
    func corruptDatabase() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/jobs.sqlite"
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        try garbage.write(to: URL(fileURLWithPath: path))
        do {
            _ = try await Worker(configuration: configuration(directory, parent: "jobworker-test-unused"))
            Issue.record("the worker started on a corrupt database")
        } catch {
            #expect(error.code == .systemFailure)
            #expect(error.message.contains("cannot use the job database \(path)"), "\(error.message)")
            #expect(error.message.contains("not a database"), "\(error.message)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
    }

    @Test("a store of the previous version (REAL seconds) is migrated: its records stay, to the nearest nanosecond")
    func migrationToExactTimes() throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/jobs.sqlite"
        let database = try DatabaseQueue(path: path)
        try JobStore.migrator.migrate(database, upTo: "v5: dropped output")
        let id = JobID()
        try database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO job (sequence, id, owner, command, arguments, executable_path, state, pid, exit_code,
                        started_at, ended_at, output_bytes, cpu_millis, memory_bytes, io_read_bytes_per_second,
                        io_write_bytes_per_second, io_read_ops_per_second, io_write_ops_per_second, max_processes,
                        cpu_usec, memory_peak_bytes, io_read_bytes, io_write_bytes, uid, gid)
                    VALUES (1, ?, 'alice', '/bin/true', '[]', '/bin/true', 'exited', 42, 0, 1765000000.25,
                        1765000001.5, 0, 1000, 1073741824, 0, 0, 0, 0, 1024, 0, 0, 0, 0, 1900000000, 1900000000)
                    """, arguments: [id.description])
        }
        try database.close()
        let store = try JobStore(path: path)
        defer { store.release() }
        let record = try #require(try store.loadAll().records.first)
        #expect(record.status.id == id && record.status.owner == "alice" && record.status.exitCode == 0)
        #expect(record.status.startedAt == WallClockTime(nanosecondsSince1970: 1_765_000_000_250_000_000))
        #expect(record.status.endedAt == WallClockTime(nanosecondsSince1970: 1_765_000_001_500_000_000))
    }

    @Test("a database written by a newer version stops the worker at startup")
    func newerSchema() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = configuration(directory, parent: "jobworker-test-\(JobID().shortDescription)")
        let worker = try await Worker(configuration: configuration)
        await worker.shutdown(gracePeriod: .zero)
        // What a later version's migration would leave behind.
        try recordMigration("v2: from the future", inDatabaseAt: directory + "/jobs.sqlite")
        do {
            _ = try await Worker(configuration: configuration)
            Issue.record("the worker started on a newer database")
        } catch {
            #expect(error.message.contains("was written by a newer jobworker"), "\(error.message)")
        }
    }
}

@Suite("State directory")
struct StateDirectoryTests {
    @Test("a second worker on a state directory in use is refused, and may start once the first shut down")
    func exclusiveStateDirectory() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.resourceControl = .disabled
        configuration.isolation = .none
        let first = try await Worker(configuration: configuration)
        do {
            _ = try await Worker(configuration: configuration)
            Issue.record("two workers share \(directory)")
        } catch {
            #expect(error.message == "the state directory \(directory) is in use by another worker: give each its own")
        }
        await first.shutdown(gracePeriod: .zero)
        let second = try await Worker(configuration: configuration)
        await second.shutdown(gracePeriod: .zero)
    }
}
