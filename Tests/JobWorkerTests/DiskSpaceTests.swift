import Foundation
import JobWorker
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A state directory whose file system is nearly full refuses starts, saying so, and accepts them
/// again once space is freed.
@Suite(
    "Free disk space", .timeLimit(.minutes(1)),
    .enabled(if: Privileges.isRoot || Privileges.isCI, "requires root: mounts a small tmpfs"))
struct DiskSpaceTests {
    @Test("below the floor, a start is refused with the directory and the free space")
    func floor() async throws {
        let mountPoint = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        try #require(mount("tmpfs", mountPoint, "tmpfs", 0, "size=64m,mode=0700") == 0, "mount: \(errno)")
        defer { umount2(mountPoint, Int32(MNT_DETACH)) }
        let state = mountPoint + "/state"
        var configuration = WorkerConfiguration(stateDirectory: state)
        configuration.resourceControl = .disabled
        configuration.isolation = .none
        let worker = try await Worker(configuration: configuration)
        // 5 % of 64 MiB is the floor (below 1 GiB): leave 2 MiB free.
        let filler = mountPoint + "/filler"
        let size = 62 * 1_048_576 - 512 * 1024
        try Data(count: size).write(to: URL(fileURLWithPath: filler))
        do {
            _ = try await worker.start(command: "/bin/true", owner: "alice")
            Issue.record("a start went through with the disk nearly full")
        } catch {
            #expect(error.code == .resourceExhausted)
            #expect(error.message.hasPrefix("the state directory \(state) has "), "\(error.message)")
            #expect(error.message.contains("below the floor of 3.2 MiB"), "\(error.message)")
        }
        #expect(worker.list().isEmpty)
        unlink(filler)
        let job = try await worker.start(command: "/bin/true", owner: "alice")
        #expect(try await worker.waitUntilEnded(job.id).state == .exited)
        await worker.shutdown(gracePeriod: .zero)
    }
}
