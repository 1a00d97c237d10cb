import Foundation
import GRDB
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// The start transaction's rollback: a start that fails at any step leaves nothing behind — no
/// descriptor, process, cgroup directory, file or record. Each failure is a real one, provoked
/// in the host: the next job's id is known from the parked init that will carry it.
@Suite(
    "Start rollback", .serialized, .timeLimit(.minutes(2)),
    .enabled(if: Privileges.canUseCgroups, "\(Privileges.reason)"))
struct StartRollbackTests {
    /// Where a start can fail, and how each failure is provoked before the start.
    enum Step: String, CaseIterable {
        /// The output log cannot be created: a file of that name exists.
        case outputLog
        /// The exit record cannot be created: a directory of that name exists.
        case exitRecord
        /// The init cannot exec the job: not a program.
        case exec
        /// The job cannot be recorded: a record with its id exists.
        case record
    }

    @Test("a start that fails leaves nothing behind", arguments: Step.allCases)
    func rollback(at step: Step) async throws {
        try await withWorker {
            $0.prestartedInits = 1
        } _: { worker in
            let inits = try #require(worker.inits)
            let state = worker.configuration.stateDirectory
            let program = state + "/garbage"
            try Data([0x00, 0x01, 0x02, 0x03]).write(to: URL(fileURLWithPath: program))
            chmod(program, 0o755)
            chmod(state, 0o755)  // for the jobs' user
            // A first job, so that everything opened once per worker is open.
            try await worker.waitUntilRecorded(try await worker.startHelper("exit", "0").id)
            await inits.waitUntilParked(1)
            let id = try #require(inits.parkedIDs.last)
            let parkedPID = try #require(inits.parkedProcesses.last)
            let recordsBefore = try recordCount(state)
            let descriptorsBefore = openDescriptorTargets()

            var command = helperPath
            switch step {
            case .outputLog:
                try Data().write(to: URL(fileURLWithPath: state + "/output/\(id).log"))
            case .exitRecord:
                try FileManager.default.createDirectory(
                    atPath: state + "/exits/\(id)", withIntermediateDirectories: false)
            case .exec:
                command = program
            case .record:
                try insertRecord(id: id, in: state)
            }
            await #expect(throws: JobWorkerError.self) {
                try await worker.start(command: command, arguments: ["exit", "0"], owner: "tester")
            }
            // The init that was to run the job is gone, its cgroup with it; the pool has a new one.
            #expect(waitForProcessToEnd(parkedPID, timeout: .seconds(5)))
            #expect(try !cgroupDirectories(of: worker).contains { $0.hasSuffix("/\(id)") })
            await inits.waitUntilParked(1)
            let descriptorsAfter = openDescriptorTargets()
            #expect(descriptorsAfter == descriptorsBefore, "before: \(descriptorsBefore), after: \(descriptorsAfter)")
            #expect(!worker.list().contains { $0.id == id })
            #expect(throws: JobWorkerError.self) { try worker.status(of: id) }
            switch step {
            case .outputLog:
                // The file the start found is not the start's to remove.
                #expect(FileManager.default.fileExists(atPath: state + "/output/\(id).log"))
                #expect(!FileManager.default.fileExists(atPath: state + "/exits/\(id)"))
            case .exitRecord:
                #expect(!FileManager.default.fileExists(atPath: state + "/output/\(id).log"))
            case .exec, .record:
                #expect(!FileManager.default.fileExists(atPath: state + "/output/\(id).log"))
                #expect(!FileManager.default.fileExists(atPath: state + "/exits/\(id)"))
            }
            #expect(try recordCount(state) == recordsBefore + (step == .record ? 1 : 0))
            #expect(zombieChildren().isEmpty)
            #expect(worker.table.contents.withLock { ($0.startsUnderWay, $0.running.count) } == (0, 0))
            // And the worker goes on: the slot the failed start reserved is free again.
            let job = try await worker.startHelper("exit", "0")
            #expect(try await worker.waitUntilEnded(job.id).state == .exited)
        }
    }

    @Test("without namespaces, a failed exec removes the job's cgroup and log")
    func rollbackWithoutInit() async throws {
        try await withWorker {
            $0.isolation = .none
        } _: { worker in
            let state = worker.configuration.stateDirectory
            let program = state + "/garbage"
            try Data([0x00, 0x01, 0x02, 0x03]).write(to: URL(fileURLWithPath: program))
            chmod(program, 0o755)
            chmod(state, 0o755)
            try await worker.waitUntilRecorded(try await worker.startHelper("exit", "0").id)
            let descriptorsBefore = openDescriptorTargets()
            let cgroupsBefore = try cgroupDirectories(of: worker)
            let logsBefore = try FileManager.default.contentsOfDirectory(atPath: state + "/output")
            await #expect(throws: JobWorkerError.self) {
                try await worker.start(command: program, owner: "tester")
            }
            #expect(try cgroupDirectories(of: worker) == cgroupsBefore)
            #expect(try FileManager.default.contentsOfDirectory(atPath: state + "/output") == logsBefore)
            #expect(openDescriptorTargets() == descriptorsBefore)
            #expect(worker.list().count == 1)
        }
    }
}

/// Runs `body` on the job database with a connection of its own, closed before it returns (so
/// that descriptor counts around it are exact), waiting while the worker writes.
private func withDatabase<T>(in state: String, _ body: (DatabaseQueue) throws -> T) throws -> T {
    var configuration = Configuration()
    configuration.busyMode = .timeout(5)
    let database = try DatabaseQueue(path: state + "/jobs.sqlite", configuration: configuration)
    defer { try? database.close() }
    return try body(database)
}

private func recordCount(_ state: String) throws -> Int {
    try withDatabase(in: state) { database in
        try database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job") ?? 0 }
    }
}

/// A record with the id the next job will get: what makes its own insert fail.
private func insertRecord(id: JobID, in state: String) throws {
    try withDatabase(in: state) { database in
        try database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO job (sequence, id, owner, command, arguments, executable_path, state, pid, started_at,
                        output_bytes, cpu_millis, memory_bytes, io_read_bytes_per_second, io_write_bytes_per_second,
                        io_read_ops_per_second, io_write_ops_per_second, max_processes, cpu_usec, memory_peak_bytes,
                        io_read_bytes, io_write_bytes)
                    VALUES (1000000, ?, 'someone', '/bin/true', '[]', '/bin/true', 'exited', 0, 0, 0, 0, 0, 0, 0, 0, 0,
                        0, 0, 0, 0, 0)
                    """, arguments: [id.description])
        }
    }
}

/// What the open descriptors of this process refer to, by kind (a file's path, "socket",
/// "anon_inode:[pidfd]"), counted: the pool's fresh init has descriptors of the same kinds as the
/// one it replaces, under other numbers. Timer descriptors are the Swift runtime's (it creates
/// them lazily for sleeps, such as a cgroup removal's retry), not the worker's.
private func openDescriptorTargets() -> [String: Int] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    var kinds: [String: Int] = [:]
    for entry in entries {
        let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry)) ?? "?"
        let kind = target.hasPrefix("socket:") ? "socket" : target.hasPrefix("pipe:") ? "pipe" : target
        if kind != "anon_inode:[timerfd]" { kinds[kind, default: 0] += 1 }
    }
    return kinds
}
