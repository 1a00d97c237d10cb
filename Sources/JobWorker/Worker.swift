import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs jobs on this host: start, stop, status, output and list.
///
/// Safe to call from any number of tasks at once. Jobs write their output straight into log
/// files in the state directory, so the worker is never in the data path: a slow or absent
/// reader cannot block a job, and no output is held in memory. A single monitor thread reaps
/// exited processes (pidfd) and wakes output readers (inotify); nothing polls.
///
/// Call `shutdown(gracePeriod:)` before dropping a worker: it stops the remaining jobs and the
/// monitor thread.
public final class Worker: Sendable {
    public let configuration: WorkerConfiguration

    let stateDirectory: StateDirectory
    private let monitor: EventMonitor
    private let commandLine: CommandLineValidation
    /// Every job's stdin.
    private let devNull: Int32
    /// nil when resource control is disabled.
    private let cgroups: (any CgroupBackend)?
    /// Inits started ahead of time, when jobs run in their own namespaces.
    let inits: InitPool?
    private let readers = ReaderTally()

    /// How many output iterators are open now, across every job. Each holds a descriptor and a
    /// buffer; a reader that goes away (the job ended, the task was cancelled, the client hung up)
    /// takes them with it, so this returns to its former value.
    public var openOutputReaders: Int { readers.count.load(ordering: .relaxed) }

    /// Which cgroup mode, controllers and directories the worker uses, for the startup log.
    public var resourceControlSummary: String {
        cgroups?.summary ?? "disabled: jobs run without cgroups and without limits"
    }

    struct Registry {
        var jobs: [JobID: Job] = [:]
        /// Finished jobs, as recorded (ended, or lost): this run's and previous runs'. Change it
        /// only through `addFinished` and `removeFinished`, which keep the two figures below.
        private(set) var history: [JobID: JobStatus] = [:]
        /// The output of every finished job, together.
        private(set) var finishedOutputBytes: UInt64 = 0
        /// The earliest end among finished jobs (a lower bound after removals).
        private(set) var earliestFinishedEnd: Date?

        mutating func addFinished(_ status: JobStatus) {
            if let previous = history.updateValue(status, forKey: status.id) {
                finishedOutputBytes -= previous.outputBytes
            }
            finishedOutputBytes += status.outputBytes
            let end = status.endedAt ?? status.startedAt
            earliestFinishedEnd = min(earliestFinishedEnd ?? end, end)
        }

        mutating func removeFinished(_ id: JobID) {
            if let removed = history.removeValue(forKey: id) { finishedOutputBytes -= removed.outputBytes }
        }

        /// Makes `earliestFinishedEnd` exact again, after removals (O(n): rarely).
        mutating func recomputeEarliestFinishedEnd() {
            earliestFinishedEnd = history.values.map { $0.endedAt ?? $0.startedAt }.min()
        }
        /// Start order, oldest first, this run's jobs and the history's.
        var order: [JobID] = []
        /// The last sequence number given to a start; the store keeps the same order.
        var lastSequence: Int64 = 0
        /// Jobs that have not ended, and starts under way: together bounded by
        /// `maximumRunningJobs`, checked and reserved in one step.
        var running: Set<JobID> = []
        var startsUnderWay = 0
        var isShuttingDown = false
        /// Signalled when a job ends (retention has something new to consider).
        let jobEnded = ChangeSignal()
        /// Deletes finished jobs past their age; cancelled by `shutdown`.
        var retentionTask: Task<Void, Never>?
    }

    let registry = Mutex(Registry())
    /// The durable record of every job (`<state>/jobs.sqlite`).
    let store: JobStore
    /// Holds the state directory's lock until `shutdown`.
    private let stateLock: ExclusiveLockFile
    /// Holds the parent cgroups until `shutdown`: their job cgroups are this worker's alone.
    let cgroupParentLock: CgroupParentLock?

    /// Prepares the state directory and the cgroup hierarchy, and removes job cgroups left by a
    /// previous run. Fails, saying how to fix the host, if a required cgroup controller is missing.
    public init(configuration: WorkerConfiguration) async throws(JobWorkerError) {
        self.configuration = configuration
        try configuration.resourcePolicy.validate()
        stateDirectory = StateDirectory(root: configuration.stateDirectory)
        try stateDirectory.prepare()
        let initPath = configuration.isolation == .namespaces ? try Self.locateInit(configuration.initPath) : nil
        commandLine = CommandLineValidation(
            limits: configuration.argumentLimits,
            searchPath: configuration.jobEnvironment["PATH"] ?? "/usr/bin:/bin")
        // Then the parts that own something (the directory's lock, cgroups, descriptors, threads),
        // each undone, in reverse, if a later one fails.
        let stateLock = try stateDirectory.lock()
        self.stateLock = stateLock
        let cgroups: (any CgroupBackend)?
        let cgroupParentLock: CgroupParentLock?
        do throws(JobWorkerError) {
            cgroups = configuration.resourceControl == .cgroups ? try makeCgroupBackend(configuration) : nil
            cgroupParentLock = try cgroups.map { cgroups throws(JobWorkerError) in
                try CgroupParentLock(cgroups.parentDirectories)
            }
        } catch {
            stateLock.unlock()
            throw error
        }
        self.cgroups = cgroups
        self.cgroupParentLock = cgroupParentLock
        let recovery: Recovery
        do throws(JobWorkerError) {
            let store = try JobStore(path: configuration.stateDirectory + "/jobs.sqlite")
            self.store = store
            recovery = try Recovery.plan(store: store, stateDirectory: stateDirectory, logger: configuration.logger)
            let devNull = try systemCall("opening /dev/null") { open("/dev/null", O_RDWR | O_CLOEXEC) }
            self.devNull = devNull
            do throws(JobWorkerError) {
                let monitor = try EventMonitor()
                self.monitor = monitor
                let logger = configuration.logger
                logger.info("resource control: \(cgroups?.summary ?? "disabled: jobs run without cgroups or limits")")
                logger.info(
                    "isolation: \(initPath.map { "PID, mount, network, UTS and IPC namespaces; init \($0)" } ?? "none")"
                )
                // Before the pool creates cgroups of its own under the same parent.
                if let cgroups {
                    let removed = await Self.removeLeftovers(
                        of: cgroups, keeping: Set(recovery.adoptable.map { $0.record.status.id.description }),
                        monitor: monitor)
                    if removed > 0 { logger.notice("removed \(removed) job cgroup(s) left by a previous run") }
                }
                do throws(JobWorkerError) {
                    inits = try initPath.map { path throws(JobWorkerError) in
                        try InitPool(
                            initPath: path, capacity: configuration.prestartedInits,
                            presetLimits: cgroups == nil
                                ? ResourceLimits()
                                : (try? configuration.resourcePolicy.apply(ResourceLimits())) ?? ResourceLimits(),
                            devNull: devNull, cgroups: cgroups, logger: configuration.logger)
                    }
                } catch {
                    monitor.shutdown()
                    throw error
                }
            } catch {
                closeDescriptor(devNull)
                throw error
            }
        } catch {
            for directory in cgroups?.parentDirectories ?? [] { rmdir(directory) }  // created above
            cgroupParentLock?.release()
            stateLock.unlock()
            throw error
        }
        registry.withLock { registry in
            registry.lastSequence = recovery.lastSequence
            registry.order = recovery.order
            for status in recovery.history { registry.addFinished(status) }
        }
        for (record, pidfd) in recovery.adoptable { adopt(record, pidfd: pidfd) }
        applyRetention()
        startRetentionTimer()
    }

    /// Takes over a job a previous run started, whose process is still there: its output goes
    /// on landing in its log, and its end is known by its pidfd and, with an init, from the exit
    /// record the init writes. If it cannot be watched, it is ended (and recorded as lost). A stop
    /// the previous run began goes on to its recorded deadline.
    private func adopt(_ record: JobStore.Record, pidfd: Int32) {
        let recorded = record.status
        let id = recorded.id
        let outputChanged = ChangeSignal()
        let stateDirectory = stateDirectory
        let recordedTermination: @Sendable () -> Termination? = {
            stateDirectory.readExitRecord(for: id).map(Termination.init(waitStatus:))
        }
        let job = Job(
            id: id, owner: recorded.owner, command: recorded.command, arguments: recorded.arguments,
            executablePath: recorded.executablePath,
            process: LaunchedProcess(pid: recorded.pid, pidfd: pidfd, control: nil), startedAt: recorded.startedAt,
            outputPath: stateDirectory.outputPath(id), outputChanged: outputChanged, limits: recorded.limits,
            cgroup: cgroups?.existingCgroup(named: id.description), adoptedTermination: recordedTermination
        ) { [weak self] final in
            self?.registry.withLock { _ = $0.running.remove(final.id) }
        } onEndPublished: { [weak self] final in
            self?.recordEnd(final)
        }
        registry.withLock { registry in
            registry.jobs[id] = job
            registry.running.insert(id)
        }
        let monitor = monitor
        do throws(JobWorkerError) {
            let watch = try monitor.onWrite(to: job.outputPath) { outputChanged.signal() }
            do throws(JobWorkerError) {
                try monitor.onExit(of: pidfd) {
                    job.reap(monitor: monitor)
                    monitor.removeWriteWatch(watch)
                }
            } catch {
                monitor.removeWriteWatch(watch)
                throw error
            }
        } catch {
            configuration.logger.error("cannot watch adopted job \(id): \(error.message); ending it")
            job.killEverything()
            job.reap(monitor: monitor)
            return
        }
        if let deadline = record.stopDeadline {
            job.beginStop(gracePeriod: max(.zero, .seconds(deadline.timeIntervalSinceNow)), resuming: true)
        }
    }

    /// Starts `command` with `arguments` (verbatim, never through a shell) on behalf of `owner`,
    /// in a cgroup of its own with `limits` (0 = the policy's default for that limit).
    ///
    /// `command` is an absolute path or a name looked up in the job's PATH. Returns once the
    /// program has been exec'd, inside its cgroup. If it cannot be executed, throws an error
    /// saying why and leaves nothing behind: no job record, no process, no file, no cgroup.
    public func start(
        command: String, arguments: [String] = [], owner: String, limits requested: ResourceLimits = ResourceLimits()
    ) async throws(JobWorkerError) -> JobStatus {
        try reserveStart()
        // The reservation becomes the job's running slot when it is registered, in one step.
        var reserved = true
        defer { if reserved { registry.withLock { $0.startsUnderWay -= 1 } } }
        let executablePath = try commandLine.resolve(command: command, arguments: arguments)
        let limits = try applyLimits(requested)
        // With isolation, the job's init — and with it the job's id and cgroup — is ready.
        var parked = try inits?.take()
        defer { inits?.refill() }
        let id = parked?.id ?? JobID()
        let outputPath = stateDirectory.outputPath(id)
        let outputChanged = ChangeSignal()
        var output: Int32 = -1
        var exitRecord: Int32 = -1
        defer { if exitRecord >= 0 { closeDescriptor(exitRecord) } }  // the init holds its own
        var watch: EventMonitor.WriteWatch?
        var cgroup: (any JobCgroup)? = parked?.cgroup
        let process: LaunchedProcess
        let startedAt = Date()
        do throws(JobWorkerError) {
            output = try stateDirectory.createOutputLog(for: id)
            watch = try monitor.onWrite(to: outputPath) { outputChanged.signal() }
            var launcher = ProcessLauncher(
                executablePath: executablePath, argumentVector: [command] + arguments,
                environment: configuration.jobEnvironment, workingDirectory: configuration.jobWorkingDirectory,
                stdinDescriptor: devNull, outputDescriptor: output)
            launcher.user = configuration.jobUser
            if let inits, let taken = parked {
                try cgroup?.apply(limits, replacing: taken.limits)
                exitRecord = try stateDirectory.createExitRecord(for: id)
                launcher.exitRecordDescriptor = exitRecord
                if let started = try launcher.launch(in: taken) {
                    process = started
                } else {
                    // The parked init was killed from outside: one more try, with a fresh init in
                    // the same cgroup. `replace` ends `taken`; until `fresh` exists, a failure
                    // only has the cgroup left to remove.
                    parked = nil
                    let fresh = try inits.replace(taken, limits: limits)
                    parked = fresh
                    guard let started = try launcher.launch(in: fresh) else {
                        throw JobWorkerError.system("starting the job (its init went away)", errno: ECONNRESET)
                    }
                    process = started
                }
            } else {
                cgroup = try cgroups?.createCgroup(named: id.description, limits: limits)
                launcher.cgroup = try cgroup?.openPlacement() ?? .none
                defer { launcher.cgroup.descriptors.forEach(closeDescriptor) }
                process = try launcher.launch()
            }
            closeDescriptor(output)
        } catch {
            if output >= 0 { closeDescriptor(output) }
            watch.map(monitor.removeWriteWatch)
            if let parked {
                await parked.discard()
            } else {
                await cgroup?.remove()
            }
            stateDirectory.removeJob(id)
            throw error
        }
        let writeWatch = watch!

        let job = Job(
            id: id, owner: owner, command: command, arguments: arguments,
            executablePath: executablePath, process: process, startedAt: startedAt,
            outputPath: outputPath, outputChanged: outputChanged, limits: limits, cgroup: cgroup
        ) { [weak self] final in
            self?.registry.withLock { _ = $0.running.remove(final.id) }
        } onEndPublished: { [weak self] final in
            self?.recordEnd(final)
        }
        reserved = false
        let (sequence, isShuttingDown) = registry.withLock { registry in
            registry.startsUnderWay -= 1
            registry.jobs[id] = job
            registry.running.insert(id)
            registry.order.append(id)
            registry.lastSequence += 1
            return (registry.lastSequence, registry.isShuttingDown)
        }
        do {
            try store.insert(
                job.initialStatus, sequence: sequence,
                processStartTime: parked?.startTime ?? processStartTime(of: process.pid))
        } catch {
            // Unrecorded, the job would be lost on a restart while its caller believes in it:
            // undo the start.
            registry.withLock { registry in
                registry.jobs[id] = nil
                registry.running.remove(id)
                registry.order.removeAll { $0 == id }
            }
            job.killEverything()
            job.reap(monitor: monitor)
            monitor.removeWriteWatch(writeWatch)
            stateDirectory.removeJob(id)
            throw error
        }
        let monitor = monitor
        do {
            try monitor.onExit(of: process.pidfd) {
                job.reap(monitor: monitor)
                monitor.removeWriteWatch(writeWatch)
            }
        } catch {
            // Without an exit watch the job could never be reaped: end it here instead.
            job.killEverything()
            job.reap(monitor: monitor)
            monitor.removeWriteWatch(writeWatch)
        }
        if isShuttingDown {
            beginStop(job, gracePeriod: .zero)
        }
        return job.initialStatus
    }

    /// Stops a job: SIGTERM to its process group, then SIGKILL once `gracePeriod` (default:
    /// the configuration's) has passed. Returns the final status once the job has ended.
    ///
    /// Stopping a job that has already ended returns its final status unchanged. A job being
    /// stopped gets SIGTERM once; of the stops asked for, the earliest SIGKILL deadline holds. If
    /// the calling task is cancelled, the stop still completes; only the wait for it is abandoned
    /// (and the current status returned).
    public func stop(_ id: JobID, gracePeriod: Duration? = nil) async throws(JobWorkerError) -> JobStatus {
        switch try entry(id) {
        case .recorded(let status):
            return status
        case .live(let job):
            beginStop(job, gracePeriod: gracePeriod ?? configuration.defaultGracePeriod)
            return await job.waitUntilEnded()
        }
    }

    /// Asks `job` to stop, and records when its SIGKILL is due: a worker restarted meanwhile (even
    /// after a crash) completes the stop on time, and records the end as a stop. On record before
    /// the signal, so that no moment of a crash loses the stop (the record keeps the earliest
    /// deadline of several stops).
    private func beginStop(_ job: Job, gracePeriod: Duration) {
        if job.isRunning {
            let deadline = Date().addingTimeInterval(
                Double(gracePeriod.components.seconds) + Double(gracePeriod.components.attoseconds) / 1e18)
            do {
                try store.recordStop(of: job.id, deadline: deadline)
            } catch {
                configuration.logger.error("\(error.message)")
            }
        }
        job.beginStop(gracePeriod: gracePeriod)
    }

    /// The job's current status.
    public func status(of id: JobID) throws(JobWorkerError) -> JobStatus {
        switch try entry(id) {
        case .recorded(let status): status
        case .live(let job): job.status
        }
    }

    /// Waits until the job has ended and returns its final status. Throws `CancellationError`
    /// if the calling task is cancelled first.
    public func waitUntilEnded(_ id: JobID) async throws -> JobStatus {
        switch try entry(id) {
        case .recorded(let status):
            return status
        case .live(let job):
            let status = await job.waitUntilEnded()
            try Task.checkCancellation()
            return status
        }
    }

    /// The job's output from byte `offset` (0 = the first byte), followed live until the job ends.
    ///
    /// Throws `.invalidArgument` if the job has ended and `offset` is past its last byte; for a
    /// running job, a reader ahead of the output waits for the job to catch up.
    public func output(of id: JobID, from offset: UInt64 = 0) throws(JobWorkerError) -> JobOutput {
        let (path, changed, endedSize): (String, ChangeSignal, UInt64?)
        switch try entry(id) {
        case .recorded(let status):
            let ended = ChangeSignal()
            ended.close()  // nothing more will be written
            (path, changed, endedSize) = (stateDirectory.outputPath(id), ended, status.outputBytes)
        case .live(let job):
            (path, changed, endedSize) = (
                job.outputPath, job.outputChanged, job.isRunning ? nil : job.status.outputBytes
            )
        }
        if let size = endedSize, offset > size {
            throw JobWorkerError(.invalidArgument, "offset \(offset) is beyond the end of the output (\(size) bytes)")
        }
        return JobOutput(path: path, offset: offset, changed: changed, tally: readers)
    }

    /// Every job's status, this run's and the recorded ones of previous runs, newest first.
    public func list() -> [JobStatus] {
        let entries = registry.withLock { registry in
            registry.order.reversed().compactMap { id -> Entry? in
                registry.jobs[id].map(Entry.live) ?? registry.history[id].map(Entry.recorded)
            }
        }
        return entries.map { entry in
            switch entry {
            case .recorded(let status): status
            case .live(let job): job.status
            }
        }
    }

    /// Refuses new jobs, stops every running job with `gracePeriod` and waits for them to end,
    /// then stops the monitor thread. Statuses remain readable afterwards.
    ///
    /// With `leavingJobsRunning`, running jobs are left alone instead: they go on, recorded as
    /// running, and the next worker on this state directory adopts them (an upgrade of the
    /// worker without stopping anyone's work). Jobs already being stopped are not left: their
    /// stop completes within `gracePeriod` (its SIGKILL would not survive the worker, and their
    /// end is recorded as the stop it is).
    public func shutdown(gracePeriod: Duration? = nil, leavingJobsRunning: Bool = false) async {
        let (jobs, wasShuttingDown) = registry.withLock { registry in
            defer { registry.isShuttingDown = true }
            return (Array(registry.jobs.values), registry.isShuttingDown)
        }
        guard !wasShuttingDown else { return }
        registry.withLock { $0.retentionTask }?.cancel()
        let grace = gracePeriod ?? configuration.defaultGracePeriod
        await withTaskGroup(of: Void.self) { group in
            for job in jobs where !(leavingJobsRunning && job.isRunning && !job.isStopping) {
                group.addTask {
                    if job.isRunning { self.beginStop(job, gracePeriod: grace) }
                    // Every end on record before the directory is let go.
                    await job.waitUntilEndRecorded()
                }
            }
        }
        monitor.shutdown()
        await inits?.shutdown()
        closeDescriptor(devNull)
        store.close()
        stateLock.unlock()  // the next worker may take the directory
        for directory in cgroups?.parentDirectories ?? [] {
            rmdir(directory)
        }
        cgroupParentLock?.release()
    }

    /// Records a job's final status, right after its waiters have learnt it; the init's exit
    /// record has then served its purpose.
    private func recordEnd(_ final: JobStatus) {
        do {
            try store.update(final)
            stateDirectory.removeExitRecord(for: final.id)
        } catch {
            configuration.logger.error("\(error.message)")
        }
        // From now on the job is its record: no process, no watches, no file reads.
        let ended = registry.withLock { registry in
            registry.jobs[final.id] = nil
            registry.addFinished(final)
            return registry.jobEnded
        }
        applyRetention()
        ended.signal()
    }

    /// Reserves one of `maximumRunningJobs` for a start, or refuses it.
    private func reserveStart() throws(JobWorkerError) {
        let limit = configuration.maximumRunningJobs
        try registry.withLock { registry throws(JobWorkerError) in
            guard !registry.isShuttingDown else {
                throw JobWorkerError(.shuttingDown, "the worker is shutting down")
            }
            guard registry.running.count + registry.startsUnderWay < limit else {
                throw JobWorkerError(
                    .resourceExhausted, "\(limit) jobs are running, the server's limit: try again when one has ended")
            }
            registry.startsUnderWay += 1
        }
    }

    /// The configured init, or `jobworker-init` next to the running executable; it must exist and
    /// be executable, or every start would fail.
    private static func locateInit(_ configured: String?) throws(JobWorkerError) -> String {
        let path =
            configured
            ?? (URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
                + "/jobworker-init")
        guard access(path, X_OK) == 0 else {
            throw JobWorkerError(
                .systemFailure, "the job init \(path) is missing or not executable: install jobworker-init there")
        }
        return path
    }

    private func applyLimits(_ requested: ResourceLimits) throws(JobWorkerError) -> ResourceLimits {
        guard cgroups != nil else {
            guard requested == ResourceLimits() else {
                throw JobWorkerError(
                    .invalidArgument, "resource limits are not available: the worker runs without cgroups")
            }
            return ResourceLimits()
        }
        if requested.cpuMillis != 0 && requested.cpuMillis < 10 {
            throw JobWorkerError(.invalidArgument, "cpu limit \(requested.cpuMillis)m is below the minimum of 10m")
        }
        return try configuration.resourcePolicy.apply(requested)
    }

    /// Kills and removes every job cgroup a previous run left under the parent directories, but
    /// those of adopted jobs (`keeping`).
    private static func removeLeftovers(
        of cgroups: any CgroupBackend, keeping: Set<String>, monitor: EventMonitor
    ) async -> Int {
        let names = Set(
            cgroups.parentDirectories.flatMap { directory in
                ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
                    var info = stat()
                    return stat(directory + "/" + $0, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
                }
            }
        ).subtracting(keeping)
        for name in names {
            _ = await cgroups.existingCgroup(named: name).tearDown(monitor: monitor)
        }
        return names.count
    }

    /// A job of this run, or the record of one from a previous run.
    private enum Entry {
        case live(Job)
        case recorded(JobStatus)
    }

    private func entry(_ id: JobID) throws(JobWorkerError) -> Entry {
        let found = registry.withLock { registry in
            registry.jobs[id].map(Entry.live) ?? registry.history[id].map(Entry.recorded)
        }
        guard let found else { throw JobWorkerError.jobNotFound(id) }
        return found
    }
}
