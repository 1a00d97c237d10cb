import Foundation
import Testing

@testable import JobWorker

/// All jobs together cannot take the host: their parent cgroups have a memory and a process
/// limit, by default most of the host with room left for the server.
@Suite("Limits on all jobs together")
struct SharedJobLimitsTests {
    @Test("the default leaves the larger of 10 % and 512 MiB of memory, and of 10 % and 1,024 pids")
    func defaults() {
        let large = SharedJobLimits.host(memoryTotal: 24 << 30, pidMax: 32768)
        #expect(large.memoryBytes == 22_118 << 20)  // 24 GiB − 2.4 GiB, in whole MiB
        #expect(large.maxProcesses == 29_492)
        let small = SharedJobLimits.host(memoryTotal: 2 << 30, pidMax: 4096)
        #expect(small.memoryBytes == 1536 << 20)
        #expect(small.maxProcesses == 3072)
    }

    @Test("both backends write the parents' memory and process limits")
    func fakeTrees() throws {
        let root = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for controller in ["memory", "pids"] {
            try FileManager.default.createDirectory(
                atPath: root + "/v1/\(controller)", withIntermediateDirectories: true)
        }
        try "9223372036854771712\n".write(
            toFile: root + "/v1/memory/memory.memsw.limit_in_bytes", atomically: false, encoding: .utf8)
        let v1 = CgroupV1(parents: ["memory": root + "/v1/memory", "pids": root + "/v1/pids"], devices: [])
        try v1.limitParents(SharedJobLimits(memoryBytes: 1 << 30, maxProcesses: 500))
        func contents(_ path: String) -> String? { try? String(contentsOfFile: root + path, encoding: .utf8) }
        #expect(contents("/v1/memory/memory.limit_in_bytes") == "1073741824")
        #expect(contents("/v1/memory/memory.memsw.limit_in_bytes") == "1073741824")
        #expect(contents("/v1/pids/pids.max") == "500")
        try FileManager.default.createDirectory(atPath: root + "/v2", withIntermediateDirectories: true)
        let v2 = CgroupV2(parent: root + "/v2", devices: [])
        try v2.limitParents(SharedJobLimits(memoryBytes: 2 << 30, maxProcesses: 700))
        #expect(contents("/v2/memory.max") == "2147483648")
        #expect(contents("/v2/pids.max") == "700")
    }

    @Test(
        "on this host's cgroups, the parents carry the limits",
        .enabled(if: Privileges.canUseCgroups, "\(Privileges.reason)"))
    func hostParents() async throws {
        try await withWorker { worker in
            let cgroups = try #require(worker.cgroups)
            let expected = SharedJobLimits.host()
            #expect(cgroups.shared == expected)
            let parents = cgroups.backend.parentDirectories
            let memoryFile = cgroups.mode == .v1 ? "memory.limit_in_bytes" : "memory.max"
            let memory = parents.compactMap { CgroupFiles.number($0 + "/" + memoryFile) }
            let pids = parents.compactMap { CgroupFiles.number($0 + "/pids.max") }
            #expect(memory == [expected.memoryBytes])
            #expect(pids == [UInt64(expected.maxProcesses)])
        }
    }
}
