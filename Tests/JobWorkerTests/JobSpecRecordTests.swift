import Foundation
import GRDB
import Testing

@testable import JobWorker

@Suite("Job spec records", .timeLimit(.minutes(1)))
struct JobSpecRecordTests {
    @Test("a job's working directory and environment names survive a restart; the values are not stored")
    func survivesRestart() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = testConfiguration(directory)
        let first = try await Worker(configuration: configuration)
        let started = try await first.start(
            JobSpec(command: "/bin/true", environment: ["B": "secret-value", "A": "1"], workingDirectory: "/usr"),
            owner: "tester")
        _ = try await first.waitUntilEnded(started.id)
        await first.shutdown(gracePeriod: .zero)
        let second = try await Worker(configuration: configuration)
        defer { Task { await second.shutdown(gracePeriod: .zero) } }
        let restored = try second.status(of: started.id)
        #expect(restored.workingDirectory == "/usr")
        #expect(restored.environmentNames == ["A", "B"])
        let database = try Data(contentsOf: URL(fileURLWithPath: directory + "/jobs.sqlite"))
        #expect(database.range(of: Data("secret-value".utf8)) == nil)
        await second.shutdown(gracePeriod: .zero)
    }

    @Test("a spec's fingerprint ignores the token and map order, and tells every other difference apart")
    func fingerprint() {
        let spec = JobSpec(
            command: "/bin/echo", arguments: ["a", "b"], environment: ["X": "1", "Y": "2"], name: "n",
            labels: ["k": "v", "j": "w"], clientToken: "one")
        var reordered = spec
        reordered.environment = ["Y": "2", "X": "1"]
        reordered.clientToken = "two"
        #expect(spec.fingerprint == reordered.fingerprint)
        #expect(spec.fingerprint.count == 32)
        var variants: [JobSpec] = []
        for change in [
            { (spec: inout JobSpec) in spec.arguments = ["ab"] },
            { $0.arguments = ["a", "b", ""] },
            { $0.environment["X"] = "10" },
            { $0.workingDirectory = "/" },
            { $0.standardInput = [] },
            { $0.name = "" },
            { $0.labels["k"] = "" },
            { $0.stopSignal = SIGINT },
            { $0.timeout = .seconds(1) },
            { $0.limits.memoryBytes += 1 },
        ] as [(inout JobSpec) -> Void] {
            var variant = spec
            change(&variant)
            variants.append(variant)
        }
        let fingerprints = Set(([spec] + variants).map(\.fingerprint))
        #expect(fingerprints.count == variants.count + 1)
    }

    @Test("a store of the previous version (no client tokens) is migrated: its records stay, without tokens")
    func migrationToClientTokens() throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/jobs.sqlite"
        let database = try DatabaseQueue(path: path)
        try JobStore.migrator.migrate(
            database, upTo: "v7: working directory, environment names, stdin, name, labels, stop signal, timeout")
        let id = JobID()
        try database.write { db in
            try db.execute(
                sql: """
                    INSERT INTO job (sequence, id, owner, command, arguments, executable_path, state, pid, exit_code,
                        started_at, ended_at, started_at_ns, ended_at_ns, output_bytes, cpu_millis, memory_bytes,
                        io_read_bytes_per_second, io_write_bytes_per_second, io_read_ops_per_second,
                        io_write_ops_per_second, max_processes, cpu_usec, memory_peak_bytes, io_read_bytes,
                        io_write_bytes, uid, gid, name)
                    VALUES (1, ?, 'alice', '/bin/true', '[]', '/bin/true', 'exited', 42, 0, 1765000000, 1765000001,
                        1765000000000000000, 1765000001000000000, 0, 1000, 1073741824, 0, 0, 0, 0, 1024, 0, 0, 0, 0, 1900000000,
                        1900000000, 'nightly')
                    """, arguments: [id.description])
        }
        try database.close()
        let store = try JobStore(path: path)
        defer { store.release() }
        let record = try #require(try store.loadAll().records.first)
        #expect(record.status.id == id && record.status.name == "nightly")
        #expect(record.clientToken == nil)
    }
}
