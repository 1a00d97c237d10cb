import CSeccompProfile
import Foundation
import Testing

@testable import JobWorker

#if canImport(Glibc)
    import Glibc
#endif

/// The seccomp profile, tried from inside real jobs: every call it lists fails with EPERM, and
/// the same calls without the filter do not, so the filter is what refuses them.
@Suite(
    "System-call filter",
    .enabled(if: Privileges.canUseCgroups, Comment(rawValue: Privileges.reason)), .timeLimit(.minutes(2)))
struct SystemCallFilterTests {
    /// "name:number" for every call the profile refuses outright that this architecture has.
    static func profileCalls(includingIOUring: Bool = true) -> [String] {
        var names: [String] = []
        for list in [jw_seccomp_denied_system_calls()!, jw_seccomp_io_uring_system_calls()!] {
            var index = 0
            while let name = list[index] {
                names.append(String(cString: name))
                index += 1
            }
            if !includingIOUring { break }
        }
        return names.compactMap { name in
            let number = jw_seccomp_system_call_number(name)
            return number < 0 ? nil : "\(name):\(number)"
        }
    }

    /// Runs `mode` of the helper to its end and returns its lines as [first word: rest].
    func probe(_ worker: Worker, _ mode: String, _ arguments: [String] = []) async throws -> [String: String] {
        let job = try await worker.start(command: helperPath, arguments: [mode] + arguments, owner: "tester")
        let ended = try await worker.waitUntilEnded(job.id)
        #expect(ended.exitCode == 0, "\(mode): \(ended)")
        let text = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
        var results: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2 { results[parts[0]] = parts[1] }
        }
        return results
    }

    @Test("each system call of the profile fails with EPERM inside a job")
    func profileRefused() async throws {
        let calls = Self.profileCalls()
        try #require(calls.count > 40)
        try await withWorker { worker in
            let results = try await probe(worker, "system-calls", calls)
            #expect(results.count == calls.count)
            for call in calls {
                let name = String(call.prefix(while: { $0 != ":" }))
                #expect(results[name] == "\(EPERM)", "\(name) gave errno \(results[name] ?? "nothing")")
            }
        }
    }

    @Test("without the filter the same unprivileged job may use keyrings, io_uring and user namespaces")
    func filterIsWhatRefuses() async throws {
        let calls = ["keyctl", "add_key", "io_uring_setup", "userfaultfd"].compactMap { name -> String? in
            let number = jw_seccomp_system_call_number(name)
            return number < 0 ? nil : "\(name):\(number)"
        }
        try await withWorker {
            $0.systemCallFilter = .off
        } _: { worker in
            let results = try await probe(worker, "system-calls", calls)
            for name in ["keyctl", "add_key", "io_uring_setup"] {
                // Zero arguments: the kernel answers EINVAL, EFAULT or EOPNOTSUPP, never EPERM.
                #expect(results[name] != nil && results[name] != "\(EPERM)", "\(name): \(results[name] ?? "-")")
            }
            let namespaces = try await probe(worker, "namespaces")
            #expect(namespaces["unshare-user"] == "0")
            let persona = try await probe(worker, "personality")
            #expect(persona["read-implies-exec"] == "0")
        }
    }

    @Test("namespaces cannot be created (unshare -U fails), clone3 falls back, fork still works")
    func namespacesRefused() async throws {
        try await withWorker { worker in
            let results = try await probe(worker, "namespaces")
            #expect(results["unshare-user"] == "\(EPERM)")
            #expect(results["unshare-net"] == "\(EPERM)")
            #expect(results["clone-user"] == "\(EPERM)")
            #expect(results["clone3"] == "\(ENOSYS)")
            #expect(results["fork"] == "0")

            let unshare = try await worker.start(command: "unshare", arguments: ["-U", "true"], owner: "tester")
            let ended = try await worker.waitUntilEnded(unshare.id)
            #expect(ended.exitCode != 0)
            let text = String(decoding: try await worker.collectOutput(of: unshare.id), as: UTF8.self)
            #expect(text.contains("Operation not permitted"), "\(text)")
        }
    }

    @Test("personality: the query and the default persona work, other personas are refused")
    func personality() async throws {
        try await withWorker { worker in
            let results = try await probe(worker, "personality")
            #expect(results["query"] == "0")
            #expect(results["linux"] == "0")
            #expect(results["read-implies-exec"] == "\(EPERM)")
        }
    }

    #if arch(x86_64)
        @Test("an i386 system call kills the job with SIGSYS, and the status says so")
        func foreignArchitecture() async throws {
            try await withWorker { worker in
                let job = try await worker.startHelper("i386-getpid")
                let ended = try await worker.waitUntilEnded(job.id)
                #expect(ended.signal == SIGSYS, "\(ended)")
                #expect(ended.state == .killed)
                let text = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
                #expect(!text.contains("returned"))
            }
        }
    #endif

    @Test("/proc/self/status shows the filter (Seccomp: 2) and an empty bounding set")
    func statusShowsFilter() async throws {
        try await withWorker { worker in
            let job = try await worker.start(
                command: "grep", arguments: ["-E", "^(Seccomp|CapBnd):", "/proc/self/status"], owner: "tester")
            _ = try await worker.waitUntilEnded(job.id)
            let text = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            #expect(text == "CapBnd:\t0000000000000000\nSeccomp:\t2\n", "\(text)")
        }
    }

    @Test("the operator may allow io_uring; the rest of the profile stays")
    func ioUringAllowed() async throws {
        let calls = ["io_uring_setup", "keyctl"].map { "\($0):\(jw_seccomp_system_call_number($0))" }
        try await withWorker {
            $0.systemCallFilter = .standardAllowingIOUring
        } _: { worker in
            let results = try await probe(worker, "system-calls", calls)
            #expect(results["io_uring_setup"] != nil && results["io_uring_setup"] != "\(EPERM)")
            #expect(results["keyctl"] == "\(EPERM)")
        }
    }
}
