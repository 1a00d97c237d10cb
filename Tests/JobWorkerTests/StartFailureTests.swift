import Foundation
import JobWorker
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Start failures", .timeLimit(.minutes(2)))
struct StartFailureTests {
    /// Starting must fail with `code`, and leave no job, no process and no file behind.
    func expectStartFails(
        _ code: JobWorkerError.Code, command: String, arguments: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> JobWorkerError? {
        try await withWorker { worker in
            let jobsDirectory = worker.configuration.stateDirectory + "/output"
            var error: JobWorkerError?
            do {
                _ = try await worker.start(command: command, arguments: arguments, owner: "alice")
                Issue.record("start succeeded", sourceLocation: sourceLocation)
            } catch let thrown as JobWorkerError {
                error = thrown
            }
            #expect(error?.code == code, sourceLocation: sourceLocation)
            #expect(worker.list().isEmpty, sourceLocation: sourceLocation)
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: jobsDirectory).isEmpty,
                sourceLocation: sourceLocation)
            return error
        }
    }

    @Test("a path that does not exist")
    func missingPath() async throws {
        let error = try await expectStartFails(.commandNotFound, command: "/nonexistent/program")
        #expect(error?.message.hasPrefix("/nonexistent/program: no such file or directory") == true)
        #expect(error?.systemError == ENOENT)
    }

    @Test("a name that no PATH directory holds")
    func missingName() async throws {
        let error = try await expectStartFails(.commandNotFound, command: "no-such-command-jobworker")
        #expect(error?.message.hasPrefix("no-such-command-jobworker: command not found") == true)
    }

    @Test("a file without execute permission, and a directory")
    func notExecutable() async throws {
        let directory = try makeJobVisibleDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/script"
        try "#!/bin/sh\necho hi\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        // Root bypasses permission bits for files with no execute bit at all? No: exec needs one.
        let error = try await expectStartFails(.permissionDenied, command: file)
        #expect(
            error?.message == "\(file): permission denied (not an executable file, or not one the job's user may run)")
        _ = try await expectStartFails(.permissionDenied, command: directory)
    }

    @Test("a file that is not a program")
    func execFormat() async throws {
        let directory = try makeJobVisibleDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/garbage"
        try Data([0x00, 0x01, 0x02, 0x03, 0x7f]).write(to: URL(fileURLWithPath: file))
        chmod(file, 0o755)
        let error = try await expectStartFails(.execFailed, command: file)
        #expect(error?.message == "\(file): exec format error (not a program this host can run)")
    }

    @Test("malformed command lines are refused before anything is created")
    func malformed() async throws {
        #expect(try await expectStartFails(.invalidArgument, command: "")?.message == "command must not be empty")
        #expect(
            try await expectStartFails(.invalidArgument, command: "/bin/echo", arguments: ["a", "b\u{0}c"])?.message
                == "argument 2 contains a NUL byte")
        #expect(
            try await expectStartFails(.invalidArgument, command: "/bin/e\u{0}cho")?.message
                == "command contains a NUL byte")
        #expect(
            try await expectStartFails(.invalidArgument, command: "./relative")?.message
                == "command \"./relative\" must be an absolute path or a name found in PATH")
        let many = [String](repeating: "x", count: 5000)
        #expect(
            try await expectStartFails(.invalidArgument, command: "/bin/echo", arguments: many)?.message
                == "too many arguments: 5000 (at most 4096)")
        let long = String(repeating: "y", count: 200_000)
        #expect(
            try await expectStartFails(.invalidArgument, command: "/bin/echo", arguments: [long])?.message
                == "argument 1 is 200000 bytes long (at most 131071)")
        let large = [String](repeating: String(repeating: "z", count: 100_000), count: 20)
        _ = try await expectStartFails(.invalidArgument, command: "/bin/echo", arguments: large)
    }
}

@Suite("Resource control disabled", .timeLimit(.minutes(1)))
struct DisabledResourceControlTests {
    @Test("without cgroups, limits are refused rather than silently ignored")
    func limitsRefused() async throws {
        try await withWorker { configuration in
            configuration.resourceControl = .disabled
        } _: { worker in
            #expect(worker.resourceControlSummary.hasPrefix("disabled"))
            await #expect(
                throws: JobWorkerError(
                    .invalidArgument, "resource limits are not available: the worker runs without cgroups")
            ) {
                try await worker.start(command: "/bin/true", owner: "alice", limits: ResourceLimits(cpuMillis: 500))
            }
            let job = try await worker.start(command: "/bin/true", owner: "alice")
            #expect(job.limits == ResourceLimits())
        }
    }
}
