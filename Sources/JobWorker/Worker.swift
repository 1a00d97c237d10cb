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
/// A thin façade: the job table (admission, lookup, history), the launcher (the start
/// transaction) and the end of a job (`JobEnd`) do the work.
///
/// Call `shutdown(gracePeriod:)` before dropping a worker: it stops the remaining jobs and the
/// monitor thread.
public final class Worker: Sendable {
    public let configuration: WorkerConfiguration

    let table: JobTable
    let store: JobStore
    let cgroups: JobCgroups?
    /// Inits started ahead of time, when jobs run in their own namespaces.
    let inits: InitPool?
    private let stateDirectory: StateDirectory
    private let monitor: EventMonitor
    private let launcher: JobLauncher
    private let retention: Retention
    /// The sweep due when the oldest finished job reaches the age limit, made again when the
    /// policy changes; nil once shut down.
    private let retentionTimer: Mutex<Task<Void, Never>?>
    /// The policy now: `configuration.policy`, then what `update(_:)` gave.
    private let currentPolicy: CurrentPolicy
    /// Holds the state directory's lock until `shutdown`.
    private let stateLock: ExclusiveLockFile
    /// Every job's stdin; closed by `shutdown`.
    private let devNull: Mutex<FileDescriptor?>
    private let readers = ReaderTally()

    /// How many output iterators are open now, across every job. Each holds a descriptor and a
    /// buffer; a reader that goes away (the job ended, the task was cancelled, the client hung up)
    /// takes them with it, so this returns to its former value.
    public var openOutputReaders: Int { readers.count.load(ordering: .relaxed) }

    /// Which cgroup mode, controllers and directories the worker uses, for the startup log.
    public var resourceControlSummary: String {
        cgroups?.summary ?? "disabled: jobs run without cgroups and without limits"
    }

    /// Returns once `WorkerConfiguration.prestartedInits` inits are parked (at once without
    /// isolation), or the worker shuts down: from then on a start is a hand-over.
    public func waitUntilInitsParked() async {
        await inits?.waitUntilParked(configuration.prestartedInits)
    }

    /// How many inits are parked, ready for a start (0 without isolation).
    public var parkedInits: Int { inits?.parkedCount ?? 0 }

    /// How many isolated starts found no parked init and prepared their own (the slow path): a
    /// pool that cannot keep up with the start rate shows here.
    public var initsPreparedOnDemand: Int { inits?.preparedOnDemand ?? 0 }

    /// Which cgroup backend the worker uses; nil when resource control is disabled.
    public var cgroupMode: CgroupMode? { cgroups?.mode }

    /// Prepares the state directory and the cgroup hierarchy, and removes job cgroups left by a
    /// previous run. Fails, saying how to fix the host, if a required cgroup controller is missing.
    public init(configuration: WorkerConfiguration) async throws(JobWorkerError) {
        self.configuration = configuration
        let logger = configuration.logger
        try configuration.policy.resourcePolicy.validate()
        let currentPolicy = CurrentPolicy(configuration.policy)
        stateDirectory = StateDirectory(root: configuration.stateDirectory)
        try stateDirectory.prepare()
        let initPath = configuration.isolation == .namespaces ? try Self.locateInit(configuration.initPath) : nil
        let commandLine = CommandLineValidation(
            limits: configuration.argumentLimits,
            searchPath: configuration.jobEnvironment["PATH"] ?? "/usr/bin:/bin")
        let devNull = try FileDescriptor("opening /dev/null") { open("/dev/null", O_RDWR | O_CLOEXEC) }
        let sandbox = try JobSandbox(
            configuration: configuration, initPath: initPath, serverPaths: configuration.serverPaths)
        let users: JobUserPool?
        if case .pool(let range) = configuration.jobUsers {
            users = try JobUserPool(range: range, jobsMayUseKeyrings: configuration.systemCallFilter == .off)
        } else {
            users = nil
        }
        // Then the parts that own something (the directory's lock, threads, cgroups), each
        // undone, in reverse, if a later one fails.
        let stateLock = try stateDirectory.lock()
        let monitor: EventMonitor
        let cgroups: JobCgroups?
        let store: JobStore
        let recovery: Recovery
        do throws(JobWorkerError) {
            monitor = try EventMonitor()
            do throws(JobWorkerError) {
                cgroups =
                    configuration.resourceControl == .cgroups
                    ? try JobCgroups(configuration: configuration, monitor: monitor) : nil
                do throws(JobWorkerError) {
                    store = try JobStore(path: configuration.stateDirectory + "/jobs.sqlite")
                    recovery = try Recovery.plan(store: store, stateDirectory: stateDirectory, logger: logger)
                } catch {
                    cgroups?.shutdown()
                    throw error
                }
            } catch {
                monitor.shutdown()
                throw error
            }
        } catch {
            stateLock.unlock()
            throw error
        }
        logger.info("resource control: \(cgroups?.summary ?? "disabled: jobs run without cgroups or limits")")
        if cgroups != nil { logger.info("job limits: \(configuration.policy.resourcePolicy.summary)") }
        switch configuration.jobUsers {
        case .pool(let range):
            logger.info("job users: one per running job, uids \(range.lowerBound)-\(range.upperBound)")
        case .fixed(let user): logger.info("job users: every job as \(user) (shared by all jobs)")
        case .worker: logger.info("job users: every job as the worker's own user")
        }
        logger.info(
            "isolation: \(initPath.map { "PID, mount, network, UTS and IPC namespaces; init \($0)" } ?? "none"); \(sandbox.summary)"
        )
        // Before the pool creates cgroups of its own under the same parent.
        if let cgroups {
            let removed = await cgroups.removeLeftovers(
                keeping: Set(recovery.adoptable.map { $0.record.status.id.description }))
            if removed > 0 { logger.notice("removed \(removed) job cgroup(s) left by a previous run") }
        }
        sandbox.scratch?.removeLeftovers(keeping: Set(recovery.adoptable.map { $0.record.status.id.description }))
        let inits: InitPool?
        do throws(JobWorkerError) {
            inits = try initPath.map { path throws(JobWorkerError) in
                try InitPool(
                    initPath: path, capacity: configuration.prestartedInits,
                    presetLimits: { [hasCgroups = cgroups != nil] in
                        hasCgroups
                            ? (try? currentPolicy.value.resourcePolicy.apply(ResourceLimits())) ?? ResourceLimits()
                            : ResourceLimits()
                    },
                    devNull: devNull.rawValue, cgroups: cgroups, sandbox: sandbox, logger: logger)
            }
        } catch {
            monitor.shutdown()
            cgroups?.shutdown()
            stateLock.unlock()
            throw error
        }
        (self.monitor, self.cgroups, self.inits, self.store, self.stateLock) = (
            monitor, cgroups, inits, store, stateLock
        )
        self.currentPolicy = currentPolicy
        table = JobTable()
        table.restore(recovery, stateDirectory: stateDirectory)
        retention = Retention(
            policy: currentPolicy, table: table, store: store, stateDirectory: stateDirectory,
            logger: logger, executor: configuration.backgroundExecutor)
        let end = JobEnd(
            table: table, store: store, stateDirectory: stateDirectory, cgroups: cgroups, retention: retention,
            monitor: monitor, scratch: sandbox.scratch, users: users, logger: logger,
            executor: configuration.backgroundExecutor)
        launcher = JobLauncher(
            configuration: configuration, policy: currentPolicy, inits: inits, commandLine: commandLine, end: end,
            devNull: devNull.rawValue,
            sandbox: sandbox, users: users)
        self.devNull = Mutex(devNull)
        for (record, process) in recovery.adoptable { launcher.adopt(record, process: process) }
        retention.apply()
        retentionTimer = Mutex(retention.startTimer())
    }

    /// The policy starts get now: `configuration.policy`, or what `update(_:)` last gave.
    public var policy: WorkerPolicy { currentPolicy.value }

    /// Replaces the policy without a restart (a server's reload): starts from now on get the new
    /// limits, ceilings, quotas and time limits; running jobs keep what they started with (a
    /// lower running-job limit refuses starts until enough jobs have ended, and stops none), and
    /// retention applies its new bounds before this returns (it deletes files: call it where
    /// blocking is fine). A resource policy that does not hold together is `invalidArgument`,
    /// and the current one stays; a worker shutting down is `shuttingDown`.
    public func update(_ policy: WorkerPolicy) throws(JobWorkerError) {
        try policy.resourcePolicy.validate()
        try retentionTimer.withLock { timer throws(JobWorkerError) in
            guard let running = timer else { throw JobWorkerError(.shuttingDown, "the worker is shutting down") }
            running.cancel()
            currentPolicy.value = policy
            timer = retention.startTimer()
        }
        retention.apply()
    }

    /// Starts `command` with `arguments` (verbatim, never through a shell) on behalf of `owner`,
    /// in a cgroup of its own with `limits` (0 = the policy's default for that limit).
    ///
    /// `command` is an absolute path or a name looked up in the job's PATH. Returns once the
    /// program has been exec'd, inside its cgroup. If it cannot be executed, throws an error
    /// saying why and leaves nothing behind: no job record, no process, no file, no cgroup.
    public func start(
        command: String, arguments: [String] = [], owner: String, limits: ResourceLimits = ResourceLimits()
    ) async throws(JobWorkerError) -> JobStatus {
        try await start(JobSpec(command: command, arguments: arguments, limits: limits), owner: owner)
    }

    /// Starts the job `spec` describes on behalf of `owner`; as `start(command:…)`, with the
    /// spec's environment and working directory. A working directory the job's user cannot
    /// enter is `invalidArgument` naming it.
    ///
    /// With a client token, a start whose owner already has a job with that token returns that
    /// job's current status and starts nothing (`alreadyExists` if the spec differs); a start
    /// with the same token under way is waited for.
    public func start(_ spec: JobSpec, owner: String) async throws(JobWorkerError) -> JobStatus {
        let began = ContinuousClock.now
        do {
            let status = try await startRecorded(spec, owner: owner)
            WorkerMetrics.jobStarted(nil, after: .now - began)
            return status
        } catch {
            WorkerMetrics.jobStarted(error.code, after: .now - began)
            throw error
        }
    }

    private func startRecorded(_ spec: JobSpec, owner: String) async throws(JobWorkerError) -> JobStatus {
        var clientToken: JobStore.RecordedClientToken?
        if let token = spec.clientToken {
            try JobSpecValidation.clientToken(token)
            let claimed = JobStore.RecordedClientToken(
                key: JobTable.ClientTokenKey(owner: owner, token: token), fingerprint: spec.fingerprint)
            switch try await table.claim(claimed.key, fingerprint: claimed.fingerprint) {
            case .existing(let id): return try status(of: id)
            case .claimed: clientToken = claimed
            }
        }
        let job: Job
        let isShuttingDown: Bool
        do {
            (job, isShuttingDown) = try await launcher.start(
                JobLauncher.Request(spec: spec, owner: owner, clientToken: clientToken))
        } catch {
            if let clientToken { table.releaseClaim(clientToken.key) }
            throw error
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
        switch try table.entry(id) {
        case .recorded(let status):
            return status
        case .live(let job):
            beginStop(job, gracePeriod: gracePeriod ?? currentPolicy.value.defaultGracePeriod)
            return await job.waitUntilEnded()
        }
    }

    /// Asks `job` to stop, and records when its SIGKILL is due: a worker restarted meanwhile (even
    /// after a crash) completes the stop on time, and records the end as a stop. On record before
    /// the signal, so that no moment of a crash loses the stop (the record keeps the earliest
    /// deadline of several stops).
    private func beginStop(_ job: Job, gracePeriod: Duration) {
        if job.isRunning {
            do {
                try store.recordStop(of: job.id, deadline: Date().addingTimeInterval(gracePeriod.timeInterval))
            } catch {
                configuration.logger.error("job \(job.id): \(error.logDescription)", metadata: ["job": "\(job.id)"])
            }
        }
        job.beginStop(gracePeriod: gracePeriod)
    }

    /// The signals `signal(_:_:)` sends: those a user sends a job, by name.
    public static let userSignals: [Int32: String] = [
        SIGHUP: "HUP", SIGINT: "INT", SIGQUIT: "QUIT", SIGUSR1: "USR1", SIGUSR2: "USR2", SIGTERM: "TERM",
        SIGKILL: "KILL", SIGCONT: "CONT", SIGSTOP: "STOP", SIGWINCH: "WINCH", SIGALRM: "ALRM",
    ]

    /// Sends one signal to the job's process group (through its init): one of `userSignals`,
    /// else `invalidArgument`; `jobEnded` once its process has ended. Not a stop: the job's end
    /// is recorded as however it then ends.
    public func signal(_ id: JobID, _ number: Int32) throws(JobWorkerError) -> JobStatus {
        guard Self.userSignals[number] != nil else {
            let names = Self.userSignals.sorted { $0.key < $1.key }.map(\.value).joined(separator: ", ")
            throw JobWorkerError(.invalidArgument, "signal \(number): one of \(names)")
        }
        switch try table.entry(id) {
        case .recorded:
            throw JobWorkerError(.jobEnded, "job \(id) has ended")
        case .live(let job):
            guard job.send(signal: number) else { throw JobWorkerError(.jobEnded, "job \(id) has ended") }
            return job.status
        }
    }

    /// How many jobs have not ended yet (adopted ones included): for the service manager's status
    /// line and the logs of a shutdown.
    public var runningJobCount: Int { table.runningCount }

    /// The job's current status.
    public func status(of id: JobID) throws(JobWorkerError) -> JobStatus {
        switch try table.entry(id) {
        case .recorded(let status): status
        case .live(let job): job.status
        }
    }

    /// Waits until the job has ended and returns its final status. Throws `CancellationError`
    /// if the calling task is cancelled first.
    public func waitUntilEnded(_ id: JobID) async throws -> JobStatus {
        switch try table.entry(id) {
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
        switch try table.entry(id) {
        case .recorded(let status):
            let ended = ChangeSignal()
            ended.finish()  // nothing more will be written
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

    /// One page of `list(matching:)`: at most `limit` jobs older than the job `cursor` (from the
    /// newest when nil), and the cursor of the next page (nil on the last). A cursor is a job,
    /// not an offset, so pages hold still while jobs start (they come before the first page) and
    /// end; `invalidArgument` for a cursor job no longer listed (deleted by retention).
    public func list(matching filter: JobFilter, after cursor: JobID?, limit: Int) throws(JobWorkerError) -> (
        jobs: [JobStatus], next: JobID?
    ) {
        var entries = table.entries()[...]
        if let cursor {
            guard let index = entries.firstIndex(where: { $0.id == cursor }) else {
                throw JobWorkerError(.invalidArgument, "the page token's job is no longer listed: list from the start")
            }
            entries = entries[(index + 1)...]
        }
        var page: [JobStatus] = []
        for entry in entries {
            let status =
                switch entry {
                case .recorded(let status): status
                case .live(let job): job.status
                }
            guard filter.matches(status) else { continue }
            if page.count == limit { return (page, page.last?.id) }
            page.append(status)
        }
        return (page, nil)
    }

    /// The jobs matching `filter`, then each of their starts and ends as it happens (see
    /// `JobWatch`). A change matches when the status it brings does: a watcher of running jobs
    /// sees them start, not end.
    public func watch(matching filter: JobFilter) -> JobWatch {
        let (entries, subscription) = table.subscribe(filter, backlog: configuration.watchBacklog)
        // Read outside the table's lock: a running job's status reads its cgroup. Only a live job
        // can have ended between the snapshot and this read, and so come again as a change.
        var current: [JobStatus] = []
        var endedInSnapshot: Set<JobID> = []
        for entry in entries {
            let status: JobStatus
            switch entry {
            case .recorded(let recorded): status = recorded
            case .live(let job):
                status = job.status
                if status.state != .running { endedInSnapshot.insert(status.id) }
            }
            if filter.matches(status) { current.append(status) }
        }
        return JobWatch(current: current, subscription: subscription, endedInSnapshot: endedInSnapshot)
    }

    /// Every job's status, this run's and the recorded ones of previous runs, newest first.
    public func list() -> [JobStatus] {
        table.entries().map { entry in
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
        // First: from here on `update` changes nothing.
        retentionTimer.withLock { timer in
            timer?.cancel()
            timer = nil
        }
        guard let jobs = await table.beginShutdown() else { return }
        // Left running, a job's timeout is the next worker's to keep; stopped, its stop is under way.
        launcher.timeouts.cancelAll()
        let grace = gracePeriod ?? currentPolicy.value.defaultGracePeriod
        await withTaskGroup(of: Void.self) { group in
            for job in jobs where !(leavingJobsRunning && job.isProcessAlive && !job.isStopping) {
                group.addTask {
                    if job.isRunning { self.beginStop(job, gracePeriod: grace) }
                    // Every end on record before the directory is let go.
                    await job.waitUntilEndRecorded()
                }
            }
        }
        table.endWatchers()  // after the ends of the jobs this shutdown stopped
        monitor.shutdown()
        await inits?.shutdown()
        _ = devNull.withLock { $0.take() }
        store.release()
        stateLock.unlock()  // the next worker may take the directory
        cgroups?.shutdown()
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
}
