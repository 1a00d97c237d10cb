import Foundation
import GRDB
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The durable record of every job: one SQLite database in the state directory, in WAL mode.
///
/// A job is inserted before `start` returns and updated when it ends, so a job that a caller was
/// told about is never missing after a restart, whether the worker stopped or was killed.
/// `synchronous = NORMAL`: a commit survives the worker's crash (the WAL is in the page cache),
/// not a power loss of the host — the price of a start that does not wait for the disk.
final class JobStore: Sendable {
    /// nil once the store has been let go (`release`).
    private let connection: Mutex<DatabaseQueue?>
    let path: String

    /// Opens (creating if needed) and migrates the database. Throws a message an operator can act
    /// on if it cannot be read, is not a jobworker database, or was written by a newer version;
    /// nothing is ever discarded to make it fit.
    init(path: String) throws(JobWorkerError) {
        self.path = path
        var configuration = Configuration()
        configuration.journalMode = .wal
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        // A database someone else could have planted or could read is refused, not used.
        for file in Self.files(of: path) {
            try StateDirectory.checkOwned(file, type: S_IFREG)
        }
        let database: DatabaseQueue
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
            try database.write { db in
                if try Self.migrator.hasBeenSuperseded(db) {
                    throw JobWorkerError(
                        .systemFailure,
                        "the job database \(path) was written by a newer jobworker: run that version, or move the state directory aside"
                    )
                }
            }
            try Self.migrator.migrate(database)
        } catch let error as JobWorkerError {
            throw error
        } catch {
            throw JobWorkerError(
                .systemFailure,
                "cannot use the job database \(path): \(Self.describe(error)) (fix or move the state directory; nothing was changed)",
                cause: Self.cause(error))
        }
        connection = Mutex(database)
        // SQLite creates the files with the process's umask (0644 usually); the WAL and the
        // shared memory take the database's mode. Job arguments are the tenants' own business.
        for file in Self.files(of: path) { chmod(file, 0o600) }
    }

    /// The database and the two files SQLite keeps beside it in WAL mode.
    private static func files(of path: String) -> [String] {
        [path, path + "-wal", path + "-shm"]
    }

    /// The schema, one migration per version; never edit a migration once released.
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs") { db in
            try db.execute(
                sql: """
                    CREATE TABLE job (
                        sequence INTEGER PRIMARY KEY,
                        id TEXT NOT NULL UNIQUE,
                        owner TEXT NOT NULL,
                        command TEXT NOT NULL,
                        arguments TEXT NOT NULL,
                        executable_path TEXT NOT NULL,
                        state TEXT NOT NULL,
                        pid INTEGER NOT NULL,
                        exit_code INTEGER,
                        signal INTEGER,
                        started_at REAL NOT NULL,
                        ended_at REAL,
                        output_bytes INTEGER NOT NULL,
                        cpu_millis INTEGER NOT NULL,
                        memory_bytes INTEGER NOT NULL,
                        io_read_bytes_per_second INTEGER NOT NULL,
                        io_write_bytes_per_second INTEGER NOT NULL,
                        io_read_ops_per_second INTEGER NOT NULL,
                        io_write_ops_per_second INTEGER NOT NULL,
                        max_processes INTEGER NOT NULL,
                        cpu_usec INTEGER NOT NULL,
                        memory_peak_bytes INTEGER NOT NULL,
                        io_read_bytes INTEGER NOT NULL,
                        io_write_bytes INTEGER NOT NULL
                    )
                    """)
        }
        migrator.registerMigration("v2: process start time") { db in
            // With the pid, identifies the process across a restart of the worker (pids are
            // reused; a pid and its start time are not).
            try db.execute(sql: "ALTER TABLE job ADD COLUMN process_start_time INTEGER")
        }
        migrator.registerMigration("v3: stop deadline") { db in
            // When a stop in progress sends SIGKILL (seconds since 1970): a stop outlives the
            // worker that began it.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN stop_deadline REAL")
        }
        migrator.registerMigration("v4: job user") { db in
            // The uid and gid the job runs as: an adopted job keeps its uid out of the pool.
            // Records of earlier versions ran as the worker's fixed user, unknown here: NULL.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN uid INTEGER")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN gid INTEGER")
        }
        migrator.registerMigration("v5: dropped output") { db in
            // Output bytes the init dropped past the job's output cap.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN output_dropped_bytes INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v6: exact times") { db in
            // Start and end times in integer nanoseconds since 1970: the REAL seconds of v1 lose
            // about 100 ns, so a time read back differed from the one reported before. The REAL
            // columns stay (NOT NULL, and what an older reader of the file would use), written
            // beside; existing records get the nearest nanosecond of what they had (whole seconds and
            // the fraction apart: seconds times 1e9 as a REAL is off by up to 128 ns). Times beyond
            // what 64-bit nanoseconds hold (past 2255) are clamped first.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN started_at_ns INTEGER")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN ended_at_ns INTEGER")
            try db.execute(
                sql: """
                    UPDATE job SET
                        started_at = min(max(started_at, -9e9), 9e9), ended_at = min(max(ended_at, -9e9), 9e9);
                    UPDATE job SET
                        started_at_ns = CAST(started_at AS INTEGER) * 1000000000
                            + CAST(round((started_at - CAST(started_at AS INTEGER)) * 1e9) AS INTEGER),
                        ended_at_ns = CAST(ended_at AS INTEGER) * 1000000000
                            + CAST(round((ended_at - CAST(ended_at AS INTEGER)) * 1e9) AS INTEGER)
                    """)
        }
        migrator.registerMigration(
            "v7: working directory, environment names, stdin, name, labels, stop signal, timeout"
        ) { db in
            // What the start request set: its working directory, the names (never the values)
            // of the environment variables it added, as JSON, and whether it gave stdin bytes
            // (never the bytes). Older records: "/", none, no.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN working_dir TEXT")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN env_names TEXT")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN has_stdin INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN name TEXT NOT NULL DEFAULT ''")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN labels TEXT")  // a JSON object
            try db.execute(sql: "ALTER TABLE job ADD COLUMN stop_signal INTEGER NOT NULL DEFAULT 15")
            // The time limit (ms) and its end (ns since 1970), and whether the stop under way is it.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN timeout_ms INTEGER")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN deadline_ns INTEGER")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN timed_out INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v8: client tokens") { db in
            // A start's idempotency token and the SHA-256 of its spec (`JobSpec.fingerprint`):
            // a retry after a restart still finds its job. One job per owner and token.
            try db.execute(sql: "ALTER TABLE job ADD COLUMN client_token TEXT")
            try db.execute(sql: "ALTER TABLE job ADD COLUMN request_fingerprint BLOB")
            try db.execute(
                sql: "CREATE UNIQUE INDEX job_client_token ON job (owner, client_token) WHERE client_token IS NOT NULL")
        }
        return migrator
    }()

    /// A job's client token as recorded, scoped to its owner, and its spec's fingerprint.
    struct RecordedClientToken: Sendable {
        var key: JobTable.ClientTokenKey
        var fingerprint: [UInt8]
    }

    /// Records a job that has just started, at `sequence` in the order of starts (the worker's
    /// list order, which a restarted worker restores).
    func insert(
        _ status: JobStatus, sequence: Int64, processStartTime: UInt64?, clientToken: RecordedClientToken? = nil
    ) throws(JobWorkerError) {
        try write("recording job \(status.id)") { db in
            if let clientToken {
                // A job retention let go of (its row's delete still to come, or failed) keeps no
                // claim on the token: the table already gave it up.
                try db.execute(
                    sql: "UPDATE job SET client_token = NULL WHERE owner = ? AND client_token = ?",
                    arguments: [clientToken.key.owner, clientToken.key.token])
            }
            // Cached: parsing the statement cost as much as running it.
            try db.cachedStatement(
                sql: """
                    INSERT INTO job (sequence, process_start_time, id, owner, command, arguments, executable_path, state, pid, exit_code, signal,
                        started_at, ended_at, started_at_ns, ended_at_ns, output_bytes, cpu_millis, memory_bytes,
                        io_read_bytes_per_second, io_write_bytes_per_second, io_read_ops_per_second,
                        io_write_ops_per_second, max_processes, cpu_usec, memory_peak_bytes, io_read_bytes,
                        io_write_bytes, uid, gid, working_dir, env_names, has_stdin, name, labels, stop_signal,
                        timeout_ms, deadline_ns, client_token, request_fingerprint)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                        ?, ?, ?, ?)
                    """
            ).execute(
                arguments: StatementArguments(
                    [sequence, processStartTime.map { Int64(clamping: $0) }] + Self.values(of: status)
                        + [
                            Int64(status.user.userID), Int64(status.user.groupID), status.workingDirectory,
                            Self.json(status.environmentNames), status.hasStandardInput, status.name,
                            String(
                                decoding: (try? JSONEncoder().encode(status.labels)) ?? Data("{}".utf8), as: UTF8.self),
                            Int64(status.stopSignal),
                            status.timeout.map {
                                Int64(
                                    clamping: $0.components.seconds * 1000 + $0.components.attoseconds
                                        / 1_000_000_000_000_000)
                            },
                            status.deadline?.nanosecondsSince1970, clientToken?.key.token,
                            clientToken.map { Data($0.fingerprint) },
                        ]))
        }
    }

    /// Records a job's new state (its end, or that it was lost).
    func update(_ status: JobStatus) throws(JobWorkerError) {
        try write("recording the end of job \(status.id)") { db in
            var values = Self.values(of: status)
            let id = values.removeFirst()
            try db.cachedStatement(
                sql: """
                    UPDATE job SET owner = ?, command = ?, arguments = ?, executable_path = ?, state = ?, pid = ?,
                        exit_code = ?, signal = ?, started_at = ?, ended_at = ?, started_at_ns = ?, ended_at_ns = ?,
                        output_bytes = ?, cpu_millis = ?,
                        memory_bytes = ?, io_read_bytes_per_second = ?, io_write_bytes_per_second = ?,
                        io_read_ops_per_second = ?, io_write_ops_per_second = ?, max_processes = ?, cpu_usec = ?,
                        memory_peak_bytes = ?, io_read_bytes = ?, io_write_bytes = ?, output_dropped_bytes = ?
                    WHERE id = ?
                    """
            ).execute(arguments: StatementArguments(values + [Int64(clamping: status.outputDroppedBytes), id]))
        }
    }

    /// Records that the stop under way is the job's timeout (its end is then TIMED_OUT, also when
    /// a restarted worker records it). Before `recordStop`.
    func recordTimeout(of id: JobID) throws(JobWorkerError) {
        try write("recording the timeout of job \(id)") { db in
            try db.cachedStatement(sql: "UPDATE job SET timed_out = 1 WHERE id = ? AND stop_deadline IS NULL")
                .execute(arguments: [id.description])
        }
    }

    /// Records that the job is being stopped, and when its SIGKILL is due; of several stops, the
    /// earliest deadline stays, whatever order the writes land in.
    func recordStop(of id: JobID, deadline: Date) throws(JobWorkerError) {
        try write("recording the stop of job \(id)") { db in
            try db.cachedStatement(
                sql: "UPDATE job SET stop_deadline = ?1 WHERE id = ?2 AND (stop_deadline IS NULL OR stop_deadline > ?1)"
            ).execute(arguments: [deadline.timeIntervalSince1970, id.description])
        }
    }

    /// Lets the database go (its file, WAL and shared memory are closed once no write is under
    /// way); later writes fail. For a worker that is letting its state directory go.
    func release() {
        _ = connection.withLock { $0.take() }
    }

    /// The database, unless the store has been let go.
    private func database() throws(JobWorkerError) -> DatabaseQueue {
        guard let database = connection.withLock({ $0 }) else {
            throw JobWorkerError(.shuttingDown, "the job database \(path) is closed: the worker is shutting down")
        }
        return database
    }

    /// Deletes the records of these jobs.
    func delete(_ ids: [JobID]) throws(JobWorkerError) {
        try write("deleting \(ids.count) job record(s)") { db in
            for id in ids {
                try db.cachedStatement(sql: "DELETE FROM job WHERE id = ?").execute(arguments: [id.description])
            }
        }
    }

    /// A job as recorded, with the start time of its process (its init's, under isolation) and,
    /// if it is being stopped, when its SIGKILL is due.
    struct Record: Sendable {
        var status: JobStatus
        var processStartTime: UInt64?
        var stopDeadline: Date?
        /// Whether that stop is the job's timeout.
        var timedOut = false
        /// The start's client token, if it gave one.
        var clientToken: RecordedClientToken?
    }

    /// Every recorded job, oldest first, and the last sequence number used.
    func loadAll() throws(JobWorkerError) -> (records: [Record], lastSequence: Int64) {
        do {
            return try database().read { db in
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM job ORDER BY sequence")
                let records = try rows.map { row in
                    Record(
                        status: try Self.status(from: row),
                        processStartTime: (row["process_start_time"] as Int64?).map { UInt64(max(0, $0)) },
                        stopDeadline: (row["stop_deadline"] as Double?).map(Date.init(timeIntervalSince1970:)),
                        timedOut: row["timed_out"] as Bool? ?? false,
                        clientToken: Self.clientToken(from: row))
                }
                return (records, rows.last?["sequence"] ?? 0)
            }
        } catch let error as JobWorkerError {
            throw error
        } catch {
            throw JobWorkerError(
                .systemFailure, "reading the job database \(path): \(Self.describe(error))", cause: Self.cause(error))
        }
    }

    private func write(_ what: String, _ body: (Database) throws -> Void) throws(JobWorkerError) {
        let began = ContinuousClock.now
        defer { WorkerMetrics.storeWrite(took: .now - began) }
        do {
            try database().write(body)
        } catch let error as JobWorkerError {
            throw error
        } catch {
            throw JobWorkerError(
                .systemFailure, "\(what) in \(path): \(Self.describe(error))", cause: Self.cause(error))
        }
    }

    /// Strings as a JSON array.
    private static func json(_ strings: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(strings)) ?? Data("[]".utf8), as: UTF8.self)
    }

    private static func strings(fromJSON text: String?) -> [String] {
        text.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
    }

    private static func values(of status: JobStatus) -> [(any DatabaseValueConvertible)?] {
        let arguments = json(status.arguments)
        let limits = status.limits
        let usage = status.usage
        return [
            status.id.description, status.owner, status.command, arguments, status.executablePath,
            status.state.rawValue, Int64(status.pid), status.exitCode.map { Int64($0) },
            status.signal.map { Int64($0) },
            status.startedAt.date.timeIntervalSince1970, status.endedAt?.date.timeIntervalSince1970,
            status.startedAt.nanosecondsSince1970, status.endedAt?.nanosecondsSince1970,
            Int64(clamping: status.outputBytes), Int64(limits.cpuMillis), Int64(clamping: limits.memoryBytes),
            Int64(clamping: limits.ioReadBytesPerSecond), Int64(clamping: limits.ioWriteBytesPerSecond),
            Int64(clamping: limits.ioReadOpsPerSecond), Int64(clamping: limits.ioWriteOpsPerSecond),
            Int64(limits.maxProcesses), Int64(clamping: usage.cpuMicroseconds),
            Int64(clamping: usage.memoryPeakBytes), Int64(clamping: usage.ioReadBytes),
            Int64(clamping: usage.ioWriteBytes),
        ]
    }

    private static func status(from row: Row) throws -> JobStatus {
        let id: String = row["id"]
        let stateName: String = row["state"]
        guard let jobID = JobID(id), let state = JobState(rawValue: stateName) else {
            throw JobWorkerError(.systemFailure, "a job record has an unknown id or state (\(id), \(stateName))")
        }
        let argumentsText: String = row["arguments"]
        let arguments = strings(fromJSON: argumentsText)
        let exitCode: Int64? = row["exit_code"]
        let signal: Int64? = row["signal"]
        let termination: Termination? =
            exitCode.map { .exited(code: Int32($0)) } ?? signal.map { .signaled(Int32($0)) }
        // Integer nanoseconds (v6); older records keep only the REAL seconds.
        let startedNanoseconds: Int64? = row["started_at_ns"]
        let endedNanoseconds: Int64? = row["ended_at_ns"]
        let endedSeconds: Double? = row["ended_at"]
        let startedAt =
            startedNanoseconds.map(WallClockTime.init(nanosecondsSince1970:))
            ?? WallClockTime(Date(timeIntervalSince1970: row["started_at"]))
        let endedAt =
            endedNanoseconds.map(WallClockTime.init(nanosecondsSince1970:))
            ?? endedSeconds.map { WallClockTime(Date(timeIntervalSince1970: $0)) }
        func unsigned(_ column: String) -> UInt64 { UInt64(max(0, row[column] as Int64)) }
        let uid: Int64? = row["uid"]
        let gid: Int64? = row["gid"]
        return JobStatus(
            id: jobID, owner: row["owner"], command: row["command"], arguments: arguments,
            executablePath: row["executable_path"], state: state, pid: Int32(row["pid"] as Int64),
            termination: termination, startedAt: startedAt, endedAt: endedAt, outputBytes: unsigned("output_bytes"),
            limits: ResourceLimits(
                cpuMillis: UInt32(clamping: unsigned("cpu_millis")), memoryBytes: unsigned("memory_bytes"),
                ioReadBytesPerSecond: unsigned("io_read_bytes_per_second"),
                ioWriteBytesPerSecond: unsigned("io_write_bytes_per_second"),
                ioReadOpsPerSecond: unsigned("io_read_ops_per_second"),
                ioWriteOpsPerSecond: unsigned("io_write_ops_per_second"),
                maxProcesses: UInt32(clamping: unsigned("max_processes"))),
            usage: ResourceUsage(
                cpuMicroseconds: unsigned("cpu_usec"), memoryPeakBytes: unsigned("memory_peak_bytes"),
                ioReadBytes: unsigned("io_read_bytes"), ioWriteBytes: unsigned("io_write_bytes")),
            user: JobUser(userID: UInt32(clamping: uid ?? 0), groupID: UInt32(clamping: gid ?? 0)),
            outputDroppedBytes: unsigned("output_dropped_bytes"),
            workingDirectory: row["working_dir"] as String? ?? "/",
            environmentNames: strings(fromJSON: row["env_names"]),
            hasStandardInput: row["has_stdin"] as Bool? ?? false, name: row["name"] as String? ?? "",
            labels: (row["labels"] as String?).flatMap {
                try? JSONDecoder().decode([String: String].self, from: Data($0.utf8))
            } ?? [:], stopSignal: Int32(clamping: row["stop_signal"] as Int64? ?? Int64(SIGTERM)),
            timeout: (row["timeout_ms"] as Int64?).map { Duration.milliseconds($0) },
            deadline: (row["deadline_ns"] as Int64?).map(WallClockTime.init(nanosecondsSince1970:)))
    }

    private static func clientToken(from row: Row) -> RecordedClientToken? {
        guard let token = row["client_token"] as String?, let fingerprint = row["request_fingerprint"] as Data? else {
            return nil
        }
        return RecordedClientToken(
            key: JobTable.ClientTokenKey(owner: row["owner"], token: token), fingerprint: [UInt8](fingerprint))
    }

    /// The underlying database error, in full, for the log.
    private static func cause(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return "SQLite \(error.resultCode): \(error.message ?? "")" }
        return "\(error)"
    }

    /// SQLite's own words ("file is not a database"), without GRDB's statement dump.
    private static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }
}
