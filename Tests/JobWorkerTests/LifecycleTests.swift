import Foundation
import JobWorker
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Job lifecycle", .timeLimit(.minutes(2)))
struct LifecycleTests {
    @Test("a job runs, reports running, then exits 0 with its output kept")
    func happyPath() async throws {
        try await withWorker { worker in
            let started = try await worker.start(
                command: helperPath, arguments: ["echo-args", "hello world", "", "$HOME", "*"], owner: "alice")
            #expect(started.owner == "alice")
            #expect(started.command == helperPath)
            #expect(started.arguments == ["echo-args", "hello world", "", "$HOME", "*"])
            #expect(started.pid > 1)
            #expect(started.endedAt == nil || started.state != .running)

            let ended = try await worker.waitUntilEnded(started.id)
            #expect(ended.state == .exited)
            #expect(ended.termination == .exited(code: 0))
            #expect(ended.exitCode == 0)
            #expect(ended.signal == nil)
            let endedAt = try #require(ended.endedAt)
            #expect(endedAt >= ended.startedAt)
            // Arguments arrive verbatim: no shell expansion, empty strings kept.
            let output = try await worker.collectOutput(of: started.id)
            #expect(String(decoding: output, as: UTF8.self) == "hello world\n\n$HOME\n*\n")
            #expect(ended.outputBytes == UInt64(output.count))
            #expect(try worker.status(of: started.id) == ended)
        }
    }

    @Test("a bare command name is resolved through the job's PATH")
    func pathResolution() async throws {
        try await withWorker { worker in
            let job = try await worker.start(command: "true", owner: "alice")
            #expect(job.command == "true")
            #expect(job.executablePath.hasPrefix("/") && job.executablePath.hasSuffix("/true"))
            #expect(try await worker.waitUntilEnded(job.id).termination == .exited(code: 0))
        }
    }

    @Test("exit codes are reported exactly", arguments: [1, 3, 42, 255])
    func exitCodes(code: Int32) async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("exit", "\(code)")
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.state == .exited)
            #expect(ended.exitCode == code)
        }
    }

    @Test(
        "a job killed by a signal it did not get from stop is reported as killed",
        arguments: [SIGKILL, SIGSEGV, SIGTERM])
    func killedBySignal(signal: Int32) async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("signal", "\(signal)")
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.state == .killed)
            #expect(ended.termination == .signaled(signal))
            #expect(ended.exitCode == nil)
        }
    }

    @Test("stop delivers SIGTERM to a job that handles it, which exits cleanly with its output kept")
    func stopGraceful() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("trap-term")
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            let stopped = try await worker.stop(job.id, gracePeriod: .seconds(30))
            #expect(stopped.state == .stopped)
            #expect(stopped.termination == .exited(code: 0))
            let output = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            #expect(output == "ready\ngot SIGTERM\n")
        }
    }

    @Test("stop escalates to SIGKILL after the grace period when SIGTERM is ignored")
    func stopEscalates() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("ignore-term")
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            let clock = ContinuousClock()
            let began = clock.now
            let stopped = try await worker.stop(job.id, gracePeriod: .milliseconds(300))
            let took = clock.now - began
            #expect(stopped.state == .stopped)
            #expect(stopped.termination == .signaled(SIGKILL))
            #expect(took >= .milliseconds(300))
        }
    }

    @Test("of two stops, the earlier SIGKILL deadline holds, whichever came first; SIGTERM goes once")
    func earliestStopDeadline() async throws {
        try await withWorker { worker in
            for (first, second) in [
                (Duration.seconds(3600), Duration.milliseconds(200)), (.milliseconds(200), .seconds(3600)),
            ] {
                let job = try await worker.startHelper("note-term")
                _ = try await worker.waitForOutput(of: job.id, containing: "ready")
                let earlier = Task { try await worker.stop(job.id, gracePeriod: first) }
                _ = try await worker.waitForOutput(of: job.id, containing: "noted SIGTERM")
                let clock = ContinuousClock()
                let began = clock.now
                let stopped = try await worker.stop(job.id, gracePeriod: second)
                let took = clock.now - began
                #expect(stopped.state == .stopped && stopped.termination == .signaled(SIGKILL))
                #expect(try await earlier.value.termination == .signaled(SIGKILL))
                #expect(took < .seconds(60), "the hour-long grace period held: \(took)")
                let output = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
                #expect(output == "ready\nnoted SIGTERM\n")
            }
        }
    }

    @Test("shutdown ends a job whose pending stop has an hour of grace, within its own grace period")
    func shutdownBeatsLongStop() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("note-term")
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            let patient = Task { try await worker.stop(job.id, gracePeriod: .seconds(3600)) }
            _ = try await worker.waitForOutput(of: job.id, containing: "noted SIGTERM")
            await worker.shutdown(gracePeriod: .milliseconds(100))
            #expect(try worker.status(of: job.id).termination == .signaled(SIGKILL))
            #expect(try await patient.value.state == .stopped)
        }
    }

    @Test("stop ends every process of the job, even a grandchild that ignores SIGTERM")
    func stopEndsGrandchild() async throws {
        try await withWorker { worker in
            let marker = makeMarker()
            let job = try await worker.startHelper("grandchild-ignores-term", marker)
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            // The job, its child and its grandchild.
            let processes = hostProcesses(withArgument: marker)
            #expect(processes.count == 3)
            let grace = Duration.milliseconds(500)
            let deadline = ContinuousClock.now + grace + .seconds(1)

            let stopped = try await worker.stop(job.id, gracePeriod: grace)
            #expect(stopped.state == .stopped)
            for pid in processes {
                #expect(waitForProcessToEnd(pid, timeout: deadline - ContinuousClock.now), "process \(pid)")
            }
        }
    }

    @Test("processes a job leaves behind do not outlive it")
    func leftoversEndWithJob() async throws {
        try await withWorker { worker in
            let marker = makeMarker()
            let job = try await worker.startHelper("background-child", marker)
            let ended = try await worker.waitUntilEnded(job.id)
            #expect(ended.state == .exited)
            #expect(String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self).hasPrefix("child "))
            // Once the job has ended, nothing with its arguments is left on the host.
            #expect(hostProcesses(withArgument: marker).isEmpty)
        }
    }

    @Test("stopping a job that already ended returns its final status unchanged")
    func stopEndedJob() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("exit", "7")
            let ended = try await worker.waitUntilEnded(job.id)
            let afterStop = try await worker.stop(job.id)
            #expect(afterStop == ended)
            #expect(afterStop.state == .exited)
            #expect(afterStop.exitCode == 7)
        }
    }

    @Test("concurrent stops of one job all return the same final status")
    func concurrentStops() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("trap-term")
            _ = try await worker.waitForOutput(of: job.id, containing: "ready")
            let statuses = try await withThrowingTaskGroup(of: JobStatus.self) { group in
                for _ in 0..<10 {
                    group.addTask { try await worker.stop(job.id, gracePeriod: .seconds(30)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(statuses).count == 1)
            #expect(statuses.first?.state == .stopped)
            #expect(statuses.first?.termination == .exited(code: 0))
        }
    }

    @Test("the job runs in its own session and process group")
    func ownSession() async throws {
        try await withWorker { worker in
            let job = try await worker.startHelper("print-session")
            _ = try await worker.waitUntilEnded(job.id)
            let text = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
            // In a PID namespace the job is PID 2 (the init is 1); otherwise its host PID.
            let pid = worker.configuration.isolation == .namespaces ? 2 : job.pid
            #expect(text == "pid \(pid) pgid \(pid) sid \(pid)\n")
        }
    }

    @Test("a job gets only the configured environment, none of the worker's")
    func environment() async throws {
        setenv("JOBWORKER_TEST_SECRET", "hunter2", 1)
        try await withWorker { worker in
            let job = try await worker.startHelper("print-environment")
            _ = try await worker.waitUntilEnded(job.id)
            let lines = String(decoding: try await worker.collectOutput(of: job.id), as: UTF8.self)
                .split(separator: "\n").map(String.init)
            let expected = worker.configuration.jobEnvironment.map { "\($0.key)=\($0.value)" }
            #expect(Set(lines) == Set(expected))
        }
    }

    @Test("a job inherits stdin, stdout and stderr only, no blocked or ignored signal")
    func inheritance() async throws {
        try await withWorker { worker in
            // The worker process ignores SIGPIPE, like every NIO server: the job must not.
            let previous = signal(SIGPIPE, SIG_IGN)
            defer { signal(SIGPIPE, previous) }
            let descriptors = try await worker.startHelper("print-descriptors")
            let signals = try await worker.startHelper("print-signal-state")
            _ = try await worker.waitUntilEnded(descriptors.id)
            _ = try await worker.waitUntilEnded(signals.id)
            let open = String(decoding: try await worker.collectOutput(of: descriptors.id), as: UTF8.self)
            #expect(Set(open.split(separator: "\n")) == ["0", "1", "2"])
            let state = String(decoding: try await worker.collectOutput(of: signals.id), as: UTF8.self)
            #expect(state == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n")
        }
    }

    @Test("list shows every job, newest first")
    func list() async throws {
        try await withWorker { worker in
            var ids: [JobID] = []
            for code in 0..<5 {
                ids.append(try await worker.startHelper("exit", "\(code)").id)
            }
            #expect(worker.list().map(\.id) == ids.reversed())
        }
    }

    @Test("starts beyond the running-job limit are refused, atomically, until a job ends")
    func runningJobLimit() async throws {
        try await withWorker {
            $0.policy.maximumRunningJobs = 3
        } _: { worker in
            // 10 concurrent starts of jobs that keep running: exactly 3 may succeed.
            let results = await withTaskGroup(of: Result<JobStatus, JobWorkerError>.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        do throws(JobWorkerError) {
                            return .success(
                                try await worker.start(command: helperPath, arguments: ["sleep"], owner: "t"))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let started = results.compactMap { try? $0.get() }
            #expect(started.count == 3)
            #expect(
                results.allSatisfy { result in
                    if case .failure(let error) = result { return error.code == .resourceExhausted }
                    return true
                })
            _ = try await worker.stop(started[0].id, gracePeriod: .zero)
            _ = try await worker.startHelper("exit", "0")
        }
    }

    @Test("unknown job ids are reported as not found by every operation")
    func unknownJob() async throws {
        try await withWorker { worker in
            let id = JobID()
            let notFound = JobWorkerError(.jobNotFound, "job \(id) not found")
            #expect(throws: notFound) { try worker.status(of: id) }
            #expect(throws: notFound) { try worker.output(of: id) }
            await #expect(throws: notFound) { try await worker.stop(id) }
            await #expect(throws: notFound) { try await worker.waitUntilEnded(id) }
        }
    }

    @Test("job ids are random UUID v4 and parsing is strict")
    func jobIDs() throws {
        let id = JobID()
        #expect(JobID(id.description) == id)
        #expect(JobID(id.description.uppercased()) == id)
        #expect(id.description.count == 36)
        #expect(Array(id.description)[14] == "4")
        #expect(JobID("not-a-uuid") == nil)
        #expect(JobID("") == nil)
        #expect(JobID("123e4567-e89b-12d3-a456-426614174000") == nil, "a version 1 UUID")
        #expect(JobID("../../../../etc/passwd") == nil)
        #expect(JobID() != JobID())
    }

    @Test("after shutdown the worker refuses new jobs, and running jobs were stopped")
    func shutdown() async throws {
        let directory = try makeStateDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = WorkerConfiguration(stateDirectory: directory)
        configuration.resourceControl = Privileges.canUseCgroups ? .cgroups : .disabled
        configuration.isolation = Privileges.canUseCgroups ? .namespaces : .none
        configuration.cgroupParentName = "jobworker-test-\(JobID().shortDescription)"
        let worker = try await Worker(configuration: configuration)
        let job = try await worker.startHelper("trap-term")
        _ = try await worker.waitForOutput(of: job.id, containing: "ready")
        await worker.shutdown(gracePeriod: .seconds(30))
        let status = try worker.status(of: job.id)
        #expect(status.state == .stopped)
        #expect(status.termination == .exited(code: 0))
        await #expect(throws: JobWorkerError(.shuttingDown, "the worker is shutting down")) {
            try await worker.startHelper("exit", "0")
        }
    }
}
