import Foundation
import JobWorker
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A state directory that jobs (other users) could read, or that someone else could plant files
/// in, is tightened or refused at startup.
@Suite("State directory safety", .timeLimit(.minutes(1)))
struct StateDirectorySafetyTests {
    func configuration(_ directory: String) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.resourceControl = .disabled
        configuration.isolation = .none
        if !Privileges.isRoot { configuration.jobUsers = .worker }
        return configuration
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : 0
    }

    @Test("a pre-created 0755 directory is made 0700, and the database is 0600")
    func tightened() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let worker = try await Worker(configuration: configuration(directory))
        #expect(mode(directory) == 0o700)
        for file in ["jobs.sqlite", "jobs.sqlite-wal", "jobs.sqlite-shm"] {
            #expect(mode(directory + "/" + file) == 0o600, "\(file)")
        }
        #expect(mode(directory + "/output") == 0o700)
        #expect(mode(directory + "/exits") == 0o700)
        await worker.shutdown(gracePeriod: .zero)
    }

    @Test(
        "a job cannot read the job database, even of a directory created 0755 beforehand",
        .enabled(if: Privileges.isRoot || Privileges.isCI, "requires root: jobs run as another user"))
    func databaseUnreadable() async throws {
        // Outside /tmp (every job has its own): only the worker's hiding keeps it from jobs.
        let visible = try makeJobVisibleDirectory()
        defer { try? FileManager.default.removeItem(atPath: visible) }
        let directory = visible + "/state"
        mkdir(directory, 0o755)  // as if the operator had opened it up
        try await withWorker {
            $0.stateDirectory = directory
        } _: { worker in
            let database = directory + "/jobs.sqlite"
            let job = try await worker.start(command: "/bin/cat", arguments: [database], owner: "mallory")
            let status = try await worker.waitUntilEnded(job.id)
            let output = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            #expect(status.exitCode != 0)
            // Covered by an empty mount: not even its name is there (without isolation, its mode
            // 0600 refuses it).
            let refusal = Privileges.canUseCgroups ? "No such file or directory" : "Permission denied"
            #expect(output.contains(refusal), "\(output)")
        }
    }

    @Test("a world-writable directory, one owned by the jobs' user, or a symlinked output/ is refused")
    func refused() async throws {
        let writable = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: writable) }
        chmod(writable, 0o777)
        await #expect {
            _ = try await Worker(configuration: configuration(writable))
        } throws: { error in
            (error as? JobWorkerError)?.message.contains("\(writable) is writable by its group or by others") == true
        }

        let linked = try makeStateDirectory()
        let elsewhere = try makeStateDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: linked)
            try? FileManager.default.removeItem(atPath: elsewhere)
        }
        try FileManager.default.createSymbolicLink(atPath: linked + "/output", withDestinationPath: elsewhere)
        await #expect {
            _ = try await Worker(configuration: configuration(linked))
        } throws: { error in
            (error as? JobWorkerError)?.message.contains("\(linked)/output is a symbolic link") == true
        }

        if Privileges.isRoot {
            let foreign = try makeStateDirectory()
            defer { try? FileManager.default.removeItem(atPath: foreign) }
            chown(foreign, 65534, 65534)
            await #expect {
                _ = try await Worker(configuration: configuration(foreign))
            } throws: { error in
                (error as? JobWorkerError)?.message.contains("\(foreign) is owned by uid 65534") == true
            }
        }
    }
}
