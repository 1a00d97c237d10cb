import Foundation
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// A uid per running job: tried as one tenant against another, and at the pool's edges.
@Suite(
    "Job user pool", .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)),
    .timeLimit(.minutes(2)))
struct JobUserPoolTests {
    func text(_ worker: Worker, _ id: JobID) async throws -> String {
        String(decoding: try await worker.collectOutput(of: id), as: UTF8.self)
    }

    @Test("two jobs of different owners: different uids, and neither reaches the other's files, IPC or processes")
    func tenantsApart() async throws {
        try await withWorker { worker in
            let name = "jobworker-test-\(JobID().shortDescription)"
            let key = "\(Int32.random(in: 1000...1_000_000))"
            let alice = try await worker.startHelper("ipc-serve", name, key, owner: "alice")
            _ = try await worker.waitForOutput(of: alice.id, containing: "serving")
            // Alice's own view: her job sees its socket, memory and files (the probe is valid).
            let bob = try await worker.startHelper("ipc-probe", name, key, "\(alice.pid)", owner: "bob")
            #expect(alice.user != bob.user)
            #expect(alice.user.userID != bob.user.userID && alice.user.groupID != bob.user.groupID)
            _ = try await worker.waitUntilEnded(bob.id)
            let lines = try await text(worker, bob.id).split(separator: "\n").map(String.init)
            #expect(
                lines == [
                    "abstract Connection refused", "shm No such file or directory", "tmp No such file or directory",
                    "dev-shm No such file or directory", "kill No such process",
                ])
            _ = try await worker.stop(alice.id, gracePeriod: .zero)
        }
    }

    @Test("the pool exhausted is RESOURCE_EXHAUSTED, never a shared uid; a uid is reused once its job has ended")
    func exhaustion() async throws {
        let first: UInt32 = 1_900_100_000
        try await withWorker {
            $0.jobUsers = .pool(first...(first + 1))
        } _: { worker in
            let one = try await worker.startHelper("sleep")
            let two = try await worker.startHelper("sleep")
            #expect(Set([one.user.userID, two.user.userID]) == [first, first + 1])
            let refused = await #expect(throws: JobWorkerError.self) { try await worker.startHelper("sleep") }
            #expect(refused?.code == .resourceExhausted)
            #expect(refused?.message.contains("all 2 job users (uids 1900100000-1900100001) are in use") == true)
            _ = try await worker.stop(one.id, gracePeriod: .zero)
            try await worker.waitUntilRecorded(one.id)
            let three = try await worker.startHelper("sleep")
            #expect(three.user == one.user)
            for job in [two, three] { _ = try await worker.stop(job.id, gracePeriod: .zero) }
        }
    }

    @Test("a key left in a uid's keyring does not pass to the next job of that uid (filter off)")
    func keyringsCleared() async throws {
        let only: UInt32 = 1_900_200_000
        try await withWorker {
            $0.jobUsers = .pool(only...only)
            $0.systemCallFilter = .off  // which refuses keyrings altogether
        } _: { worker in
            let adder = try await worker.startHelper("add-user-key")
            _ = try await worker.waitUntilEnded(adder.id)
            #expect(try await text(worker, adder.id) == "added\n")
            try await worker.waitUntilRecorded(adder.id)
            let finder = try await worker.startHelper("find-user-key")
            #expect(finder.user == adder.user)
            _ = try await worker.waitUntilEnded(finder.id)
            #expect(try await text(worker, finder.id) == "Required key not available\n")
        }
    }

    @Test("a range overlapping a user, a group or a subordinate range is refused, naming it")
    func overlapsRefused() throws {
        #expect(JobUserPool.clash(with: 65534...65534)?.contains("(65534) in /etc/") == true)
        #expect(JobUserPool.clash(with: 0...10)?.hasPrefix("user root (0) in /etc/passwd") == true)
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let subuid = directory + "/subuid"
        try "alice:1900000000:65536\n".write(toFile: subuid, atomically: true, encoding: .utf8)
        let clash = JobUserPool.clash(
            with: JobUsers.defaultRange,
            files: (passwd: "/etc/passwd", group: "/etc/group", subuid: subuid, subgid: subuid))
        #expect(clash == "alice's subordinate ids 1900000000-1900065535 in \(subuid)")
        #expect(JobUserPool.clash(with: JobUsers.defaultRange) == nil)
        #expect(throws: JobWorkerError.self) { try JobUserPool(range: 0...5) }
    }
}
