import Foundation
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// The user jobs run as: unprivileged by default, so that a job cannot reach past its own
/// cgroup, output and process.
@Suite(
    "Job user", .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)),
    .timeLimit(.minutes(2)))
struct JobUserTests {
    /// The helper's `print-credentials` lines as a dictionary: "uid" → "65534 65534 65534", ...
    func credentials(_ worker: Worker) async throws -> [String: String] {
        let job = try await worker.startHelper("print-credentials")
        #expect(try await worker.waitUntilEnded(job.id).exitCode == 0)
        return try await parsedCredentials(worker, job.id)
    }

    func parsedCredentials(_ worker: Worker, _ id: JobID) async throws -> [String: String] {
        let lines = String(decoding: try await worker.collectOutput(of: id), as: UTF8.self).split(separator: "\n")
        return Dictionary(
            uniqueKeysWithValues: lines.map { line in
                let parts = line.split(separator: " ", maxSplits: 1)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            })
    }

    @Test(
        "by default a job runs as a uid of its own, with no supplementary group, no capability and no new privileges",
        arguments: [Isolation.namespaces, .none])
    func ownUserByDefault(isolation: Isolation) async throws {
        try await withWorker {
            $0.isolation = isolation
        } _: { worker in
            #expect(worker.configuration.jobUsers == .pool(JobUsers.defaultRange))
            let job = try await worker.startHelper("print-credentials")
            let user = job.user
            #expect(JobUsers.defaultRange.contains(user.userID))
            #expect(user.groupID == user.userID)
            _ = try await worker.waitUntilEnded(job.id)
            let found = try await parsedCredentials(worker, job.id)
            #expect(found["uid"] == "\(user.userID) \(user.userID) \(user.userID)")
            #expect(found["gid"] == "\(user.groupID) \(user.groupID) \(user.groupID)")
            #expect(found["groups"] == "0")
            #expect(found["no-new-privileges"] == "1")
            #expect(found["effective-capabilities"] == "0000000000000000")
        }
    }

    @Test(
        "a job's capability bounding set is empty: nothing it runs can gain a capability",
        arguments: [Isolation.namespaces, .none])
    func emptyBoundingSet(isolation: Isolation) async throws {
        try await withWorker {
            $0.isolation = isolation
        } _: { worker in
            let job = try await worker.start(
                command: "/bin/grep", arguments: ["^CapBnd", "/proc/self/status"], owner: "tester")
            #expect(try await worker.waitUntilEnded(job.id).exitCode == 0)
            let output = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            #expect(output == "CapBnd:\t0000000000000000\n")
        }
    }

    @Test("a configured user and group, or the worker's own (root) when none is")
    func configuredUser() async throws {
        try await withWorker {
            $0.jobUsers = .fixed(JobUser(userID: 4242, groupID: 4343))
        } _: { worker in
            let found = try await credentials(worker)
            #expect(found["uid"] == "4242 4242 4242")
            #expect(found["gid"] == "4343 4343 4343")
        }
        try await withWorker {
            $0.jobUsers = .worker
        } _: { worker in
            let found = try await credentials(worker)
            #expect(found["uid"] == "0 0 0")
            // The system-call filter takes no_new_privs, even for a job of root.
            #expect(found["no-new-privileges"] == "1")
        }
    }

    @Test("a job cannot read another job's output, or move itself out of its cgroup: both are hidden")
    func confined() async throws {
        try await withWorker { worker in
            let other = try await worker.startHelper("pattern", "1000")
            _ = try await worker.waitUntilEnded(other.id)
            let otherLog = worker.configuration.stateDirectory + "/output/\(other.id).log"
            let job = try await worker.startHelper("sleep")
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            // The worker's parent cgroups, one level above the job's own.
            let parents = try cgroupDirectories(of: worker).filter { $0.hasSuffix("/\(job.id)") }.map {
                URL(fileURLWithPath: $0).deletingLastPathComponent().path + "/cgroup.procs"
            }
            try #require(!parents.isEmpty)
            _ = try await worker.stop(job.id, gracePeriod: .zero)

            let reader = try await worker.startHelper("try-open", "read", otherLog)
            let writer = try await worker.start(
                command: helperPath, arguments: ["try-open", "write"] + parents, owner: "tester")
            var lines: [String] = []
            for probe in [reader, writer] {
                _ = try await worker.waitUntilEnded(probe.id)
                lines += String(decoding: try await worker.collectOutput(of: probe.id), as: UTF8.self)
                    .split(separator: "\n").map(String.init)
            }
            #expect(lines.count == 1 + parents.count)
            // Not there at all: the state directory and /sys/fs/cgroup are covered by empty mounts.
            for line in lines {
                #expect(line.hasSuffix(" No such file or directory"), "\(line)")
            }
        }
    }
}
