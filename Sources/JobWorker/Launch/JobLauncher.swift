import Foundation
import Logging

/// Starting a job, as one transaction: admission, validation, the cgroup, the output log and
/// its watch, the process (handed to a parked init, or as a child of ours), the job table and
/// the job's record, then the exit watch. Each step pushes its undo on one `RollbackStack`; a
/// failure at any step unwinds what exists, so a failed start leaves no process, descriptor,
/// file, cgroup or record. Also takes over the jobs a previous run left running (`adopt`),
/// through the same watch steps.
struct JobLauncher: Sendable {
    let configuration: WorkerConfiguration
    /// The limits, quotas and time limits now: each start reads them once.
    let policy: CurrentPolicy
    let inits: InitPool?
    let commandLine: CommandLineValidation
    /// Where a job's end goes; it also holds the parts a start shares with it (the table, the
    /// store, the state directory, the cgroups, the monitor).
    let end: JobEnd
    /// /dev/null, every job's stdin; owned by the worker.
    let devNull: Int32
    /// What confines every job.
    let sandbox: JobSandbox
    /// The uids jobs get one each, with `JobUsers.pool`.
    let users: JobUserPool?
    /// The jobs' armed timeouts.
    let timeouts = TimeoutTimers()

    private var table: JobTable { end.table }
    private var store: JobStore { end.store }
    private var stateDirectory: StateDirectory { end.stateDirectory }
    private var cgroups: JobCgroups? { end.cgroups }
    private var monitor: EventMonitor { end.monitor }

    /// What a start asks for, as the caller gave it.
    struct Request: Sendable {
        var spec: JobSpec
        var owner: String
        /// The client token the start claimed (`JobTable.claim`), kept with the job's record.
        var clientToken: JobStore.RecordedClientToken?
    }

    /// Starts the job; returns it once its program has exec'd inside its cgroup, recorded and
    /// watched. `isShuttingDown` tells that the worker began shutting down meanwhile.
    func start(_ request: Request) async throws(JobWorkerError) -> (job: Job, isShuttingDown: Bool) {
        // One reading of the policy for the whole start, admission included.
        let policy = policy.value
        try table.reserveStart(for: request.owner, policy: policy)
        var rollback = RollbackStack()
        rollback.push { [table] in table.cancelReservation(for: request.owner) }
        do {
            let started = try await launch(request, policy: policy, rollback: &rollback)
            return started
        } catch {
            await rollback.unwind()
            throw error
        }
    }

    private func launch(_ request: Request, policy: WorkerPolicy, rollback: inout RollbackStack)
        async throws(JobWorkerError) -> (
            job: Job, isShuttingDown: Bool
        )
    {
        let spec = request.spec
        try JobSpecValidation.name(spec.name)
        try JobSpecValidation.labels(spec.labels)
        try JobSpecValidation.stopSignal(spec.stopSignal)
        let timeout = spec.timeout ?? policy.defaultTimeout
        if let timeout {
            guard timeout > .zero else { throw JobWorkerError(.invalidArgument, "timeout must be positive") }
            if let maximum = policy.maximumTimeout, timeout > maximum {
                throw JobWorkerError(
                    .invalidArgument, "timeout \(timeout) is over the server's maximum of \(maximum)")
            }
        }
        let environment = try JobSpecValidation.environment(spec.environment, over: configuration.jobEnvironment)
        let workingDirectory =
            try spec.workingDirectory.map(JobSpecValidation.workingDirectory)
            ?? configuration.jobWorkingDirectory
        let executablePath = try commandLine.resolve(
            command: spec.command, arguments: spec.arguments, searchPath: spec.environment["PATH"])
        try commandLine.checkExecSize(arguments: [spec.command] + spec.arguments, environment: environment)
        // A memory file with the request's bytes, held until the job has its own copy.
        var standardInput: FileDescriptor?
        var stdinDescriptor = devNull
        if let bytes = spec.standardInput {
            let opened = try JobSpecValidation.standardInput(bytes)
            stdinDescriptor = opened.rawValue
            standardInput = consume opened
        }
        let limits = try applyLimits(spec.limits, policy.resourcePolicy)
        if let floor = policy.minimumFreeDisk { try stateDirectory.checkFreeSpace(floor) }
        // With isolation, the job's init — and with it the job's id and cgroup — is ready.
        let parked = try inits?.take()
        defer { inits?.refill() }
        if let parked {
            rollback.push { [inits] in await inits?.discard(parked) }
        }
        let id = parked?.id ?? JobID()
        var cgroup = parked?.cgroup
        if let cgroup, let parked {
            try cgroup.apply(limits, replacing: parked.limits)
        } else if let cgroups {
            let created = try cgroups.create(named: id.description, limits: limits)
            rollback.push { _ = await cgroups.tearDown(created) }
            cgroup = created
        }
        let output = try stateDirectory.createOutputLog(for: id, forInit: parked != nil)
        rollback.push { [stateDirectory] in stateDirectory.removeOutput(of: id) }
        let outputChanged = ChangeSignal()
        let writeWatch = try monitor.onWrite(to: stateDirectory.outputPath(id)) { outputChanged.signal() }
        rollback.push { [monitor] in monitor.removeWriteWatch(writeWatch) }

        var launcher = ProcessLauncher(
            executablePath: executablePath, argumentVector: [spec.command] + spec.arguments,
            environment: environment, workingDirectory: workingDirectory,
            stdinDescriptor: stdinDescriptor, outputDescriptor: output.rawValue)
        let user: JobUser
        switch configuration.jobUsers {
        case .pool:
            guard let users else { throw JobWorkerError(.systemFailure, "no pool of job users") }
            user = try users.take()
            rollback.push { users.giveBack(user) }
            launcher.user = user
        case .fixed(let fixed):
            user = fixed
            launcher.user = fixed
        case .worker:
            user = JobUser(userID: geteuid(), groupID: getegid())
        }
        launcher.sandbox = sandbox
        if launcher.user != nil, parked != nil { try sandbox.scratch?.hand(id, to: user) }
        let startedAt = WallClockTime.now
        let process: any JobProcess
        let startTime: UInt64?
        if let inits, let parked {
            let exitRecord = try stateDirectory.createExitRecord(for: id)
            rollback.push { [stateDirectory] in stateDirectory.removeExitRecord(for: id) }
            let dropRecord = try stateDirectory.createDropRecord(for: id)
            let limit = policy.maximumOutputBytes
            var supervising = parked
            if try !launcher.launch(in: parked, exitRecord: exitRecord, dropRecord: dropRecord, outputLimit: limit) {
                // The parked init was killed from outside: one more try, with a fresh init in the
                // same cgroup (its limits already written).
                let fresh = try inits.replace(parked, limits: limits)
                rollback.push { fresh.end() }
                guard try launcher.launch(in: fresh, exitRecord: exitRecord, dropRecord: dropRecord, outputLimit: limit)
                else {
                    throw JobWorkerError.system("starting the job (its init went away)", errno: ECONNRESET)
                }
                supervising = fresh
            }
            process = SupervisedProcess(supervising)
            startTime = supervising.startTime
        } else {
            let placement = try cgroup?.openPlacement() ?? .none
            launcher.cgroup = placement.placement
            let launched = try launcher.launch()
            startTime = processStartTime(of: launched.pid)
            process = ChildProcess(pid: launched.pid, pidfd: launched.pidfd)
        }
        output.closeNow()  // the job holds its own
        standardInput.take()?.closeNow()  // so does its stdin
        rollback.push {
            process.signal(SIGKILL)
            _ = process.reap(killedByWorker: true)
        }

        let job = Job(
            id: id, owner: request.owner, command: spec.command, arguments: spec.arguments,
            workingDirectory: workingDirectory, environmentNames: spec.environment.keys.sorted(),
            hasStandardInput: spec.standardInput != nil, name: spec.name, labels: spec.labels,
            stopSignal: spec.stopSignal, timeout: timeout, deadline: timeout.map { startedAt.advanced(by: $0) },
            executablePath: executablePath, process: process, startedAt: startedAt,
            outputPath: stateDirectory.outputPath(id), outputChanged: outputChanged, limits: limits, cgroup: cgroup,
            user: user, dropRecordPath: parked == nil ? nil : stateDirectory.dropRecordPath(id),
            outputLimit: policy.maximumOutputBytes)
        let sequence = table.assignSequence(to: id)
        rollback.push { [table] in table.withdraw(id) }
        // Recorded before anyone can see it: unrecorded, the job would be lost on a restart
        // while its caller believes in it.
        try store.insert(
            job.initialStatus, sequence: sequence, processStartTime: startTime, clientToken: request.clientToken)
        let isShuttingDown = table.publish(job, clientToken: request.clientToken?.key)
        watchExit(of: job, process: process, writeWatch: writeWatch)
        armTimeout(job)
        return (job, isShuttingDown)
    }

    /// Stops the job at its deadline, as a stop does, and marks the stop as its timeout (on
    /// record first, so that a restart in between still ends it `timedOut`). Also for an adopted
    /// job, at its original deadline (at once if that has passed). Holds the job weakly: a job
    /// that ended first is simply gone.
    private func armTimeout(_ job: Job) {
        guard let deadline = job.deadline else { return }
        let (store, grace, logger, timeouts, id) = (
            store, policy.value.defaultGracePeriod, configuration.logger, timeouts, job.id
        )
        let timer = Task(executorPreference: configuration.backgroundExecutor) { [weak job] in
            let wait = deadline.timeIntervalSince(.now)
            if wait > 0 { try? await Task.sleep(for: .nanoseconds(Int64(min(wait, 1e17) * 1e9))) }
            timeouts.remove(id)
            guard !Task.isCancelled, let job, job.isRunning, !job.isStopping else { return }
            do throws(JobWorkerError) {
                try store.recordTimeout(of: job.id)
                try store.recordStop(of: job.id, deadline: Date().addingTimeInterval(grace.timeInterval))
            } catch {
                logger.error("job \(job.id): \(error.logDescription)", metadata: ["job": "\(job.id)"])
            }
            job.beginStop(gracePeriod: grace, isTimeout: true)
        }
        timeouts.add(timer, for: id)
    }

    /// Takes over a job a previous run started, whose process is still there: its output goes on
    /// landing in its log, and its end is known by its pidfd and the exit record its init writes.
    /// If it cannot be watched, it is ended (and recorded as it ended). A stop the previous run
    /// began goes on to its recorded deadline.
    func adopt(_ record: JobStore.Record, process: AdoptedProcess) {
        let recorded = record.status
        let id = recorded.id
        let outputChanged = ChangeSignal()
        let job = Job(
            id: id, owner: recorded.owner, command: recorded.command, arguments: recorded.arguments,
            workingDirectory: recorded.workingDirectory, environmentNames: recorded.environmentNames,
            hasStandardInput: recorded.hasStandardInput, name: recorded.name, labels: recorded.labels,
            stopSignal: recorded.stopSignal, timeout: recorded.timeout, deadline: recorded.deadline,
            executablePath: recorded.executablePath, process: process, startedAt: recorded.startedAt,
            outputPath: stateDirectory.outputPath(id), outputChanged: outputChanged, limits: recorded.limits,
            cgroup: cgroups?.backend.existingCgroup(named: id.description), user: recorded.user,
            dropRecordPath: stateDirectory.dropRecordPath(id), outputLimit: policy.value.maximumOutputBytes)
        users?.markInUse(recorded.user)
        table.registerAdopted(job)
        do {
            try job.adopt(recordedStopDeadline: record.stopDeadline, timedOut: record.timedOut)
        } catch {
            configuration.logger.error("job \(id): \(error)", metadata: ["job": "\(id)"])  // a fresh job: cannot happen
        }
        do {
            let writeWatch = try monitor.onWrite(to: job.outputPath) { outputChanged.signal() }
            watchExit(of: job, process: process, writeWatch: writeWatch)
            armTimeout(job)
        } catch {
            configuration.logger.error("cannot watch adopted job \(id): \(error.logDescription); ending it")
            job.killEverything()
            end.processExited(job, writeWatch: nil)
        }
    }

    /// Hands the job's end to `JobEnd` once its process exits. Without an exit watch the job
    /// could never be reaped: it is ended at once instead.
    private func watchExit(of job: Job, process: any JobProcess, writeWatch: EventMonitor.WriteWatch) {
        let end = end
        do {
            try monitor.onExit(of: process.pidfdNumber) {
                end.processExited(job, writeWatch: writeWatch)
            }
        } catch {
            configuration.logger.error("cannot watch job \(job.id): \(error.logDescription); ending it")
            job.killEverything()
            end.processExited(job, writeWatch: writeWatch)
        }
    }

    private func applyLimits(_ requested: ResourceLimits, _ policy: ResourcePolicy) throws(JobWorkerError)
        -> ResourceLimits
    {
        guard cgroups != nil else {
            guard requested == ResourceLimits() else {
                throw JobWorkerError(
                    .invalidArgument, "resource limits are not available: the worker runs without cgroups")
            }
            return ResourceLimits()
        }
        return try policy.apply(requested)
    }
}
