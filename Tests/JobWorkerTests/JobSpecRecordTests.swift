import Foundation
import Testing

@testable import JobWorker

@Suite("Job spec records", .timeLimit(.minutes(1)))
struct JobSpecRecordTests {
    @Test("a job's working directory and environment names survive a restart; the values are not stored")
    func survivesRestart() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.resourceControl = Privileges.canUseCgroups ? .cgroups : .disabled
        configuration.isolation = Privileges.canUseCgroups ? .namespaces : .none
        configuration.cgroupParentName = "jobworker-test-\(JobID().shortDescription)"
        if geteuid() != 0 { configuration.jobUsers = .worker }
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
}
