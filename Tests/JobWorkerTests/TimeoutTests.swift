import Foundation
import Testing

@testable import JobWorker

@Suite("Timeouts", .timeLimit(.minutes(1)))
struct TimeoutTests {
    func configuration(_ directory: String) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.resourceControl = Privileges.canUseCgroups ? .cgroups : .disabled
        configuration.isolation = Privileges.canUseCgroups ? .namespaces : .none
        configuration.cgroupParentName = "jobworker-timeout-\(JobID().shortDescription)"
        if geteuid() != 0 { configuration.jobUsers = .worker }
        configuration.policy.defaultGracePeriod = .seconds(5)
        return configuration
    }

    @Test("a 300 ms timeout ends a sleeping job as timedOut, within the grace period; a stop before it is a stop")
    func endsAtTheDeadline() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = configuration(directory)
        configuration.policy.maximumTimeout = .seconds(60)
        let worker = try await Worker(configuration: configuration)
        let job = try await worker.start(
            JobSpec(command: helperPath, arguments: ["sleep"], timeout: .milliseconds(300)), owner: "tester")
        #expect(job.deadline == job.startedAt.advanced(by: .milliseconds(300)))
        let ended = try await worker.waitUntilEnded(job.id)
        #expect(ended.state == .timedOut)
        let ran = try #require(ended.endedAt).timeIntervalSince(ended.startedAt)
        #expect(ran >= 0.3 && ran < 5, "ran \(ran) s")
        let stopped = try await worker.start(
            JobSpec(command: helperPath, arguments: ["sleep"], timeout: .seconds(30)), owner: "tester")
        #expect(try await worker.stop(stopped.id, gracePeriod: .seconds(1)).state == .stopped)
        do {
            _ = try await worker.start(JobSpec(command: "/bin/true", timeout: .seconds(61)), owner: "tester")
            Issue.record("a timeout over the maximum was accepted")
        } catch {
            #expect(error.code == .invalidArgument && error.message.contains("maximum"), "\(error.message)")
        }
        await worker.shutdown(gracePeriod: .zero)
    }

    @Test("a job adopted after a restart still ends at its original deadline, as timedOut")
    func survivesRestart() async throws {
        guard Privileges.canUseCgroups else {
            print("skipped: adopting jobs needs their inits (root)")
            return
        }
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = configuration(directory)
        let first = try await Worker(configuration: configuration)
        let job = try await first.start(
            JobSpec(command: helperPath, arguments: ["sleep"], timeout: .milliseconds(1500)), owner: "tester")
        await first.shutdown(leavingJobsRunning: true)
        let second = try await Worker(configuration: configuration)
        let ended = try await second.waitUntilEnded(job.id)
        #expect(ended.state == .timedOut)
        let ran = try #require(ended.endedAt).timeIntervalSince(ended.startedAt)
        #expect(ran >= 1.5 && ran < 6.5, "ran \(ran) s")
        await second.shutdown(gracePeriod: .zero)
    }
}
