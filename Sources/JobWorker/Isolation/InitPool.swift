import CJobLauncher
import CLinuxEvents
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps a few inits parked, their cgroups set to the default limits, so a start only hands over
/// the job (and writes its limits, when they are not the defaults).
///
/// Measured here, the namespaces cost ≈ 0.45 ms at p50 (≈ 5 ms at p99, mostly the network
/// namespace), exec'ing even a small static init ≈ 0.35 ms, and on cgroup v1 every move of a
/// process into a cgroup may wait for an RCU grace period (≈ 10 ms now and then): together far
/// more than everything else a start does. A dedicated thread at idle priority creates cgroups and
/// starts inits in them in advance, and refills after every take; when the pool is empty (or
/// sized 0) a start prepares its init on the spot, through the very same code, so the pool
/// changes when the work is done, never what is done.
final class InitPool: Sendable {
    private struct State {
        var parked: [ParkedInit] = []
        var isShutDown = false
        var thread: pthread_t?
        /// Starts that found the pool empty and prepared their init themselves.
        var preparedOnDemand = 0
    }

    private let initPath: String
    private let capacity: Int
    private let presetLimits: @Sendable () -> ResourceLimits
    private let cgroups: JobCgroups?
    /// The filesystem, filter and executable every init is started with.
    private let sandbox: JobSandbox
    private let logger: Logger
    /// /dev/null, read-write: the stdio of a parked init.
    private let devNull: Int32
    /// Wakes the refilling thread; closed by `shutdown` once the thread has stopped.
    private let wake: Mutex<FileDescriptor?>
    private let wakeNumber: Int32
    private let state = Mutex(State())
    /// Signalled whenever an init is parked.
    private let parkedChanged = ChangeSignal()

    /// - Parameter presetLimits: the limits a parked init's cgroup gets in advance: the worker's
    ///   defaults at the time, which most jobs run with (a start writes only what differs).
    init(
        initPath: String, capacity: Int, presetLimits: @escaping @Sendable () -> ResourceLimits, devNull: Int32,
        cgroups: JobCgroups?,
        sandbox: JobSandbox, logger: Logger
    ) throws(JobWorkerError) {
        let wake = try FileDescriptor("eventfd") { eventfd(0, Int32(EFD_CLOEXEC)) }
        (self.initPath, self.capacity, self.presetLimits, self.sandbox) = (initPath, capacity, presetLimits, sandbox)
        (self.cgroups, self.logger, self.devNull) = (cgroups, logger, devNull)
        wakeNumber = wake.rawValue
        self.wake = Mutex(wake)
        guard capacity > 0 else { return }
        let thread = try startDedicatedThread("init pool") { self.run() }
        state.withLock { $0.thread = thread }
    }

    /// A parked init, from the pool or started now. Call `refill()` once the job has started:
    /// starting the replacement meanwhile would compete with this start for the CPU.
    func take() throws(JobWorkerError) -> ParkedInit {
        // Nothing is taken from a pool that is shut down: its inits are `shutdown`'s to end.
        let (pooled, isShutDown) = state.withLock { state in
            let pooled = state.isShutDown ? nil : state.parked.popLast()
            if pooled == nil && !state.isShutDown { state.preparedOnDemand += 1 }
            return (pooled, state.isShutDown)
        }
        guard !isShutDown else { throw JobWorkerError(.shuttingDown, "the worker is shutting down") }
        guard let pooled else { return try startInit() }
        return pooled
    }

    /// Lets the thread start inits until the pool is full again.
    func refill() {
        // Under the lock, so that no wake-up is sent to a thread that has been told to stop.
        state.withLock { state in
            if !state.isShutDown { wakeThread() }
        }
    }

    /// Stops the thread and ends the inits still parked, removing their cgroups.
    func shutdown() async {
        let (thread, wasShutDown) = state.withLock { state -> (pthread_t?, Bool) in
            defer { state.isShutDown = true }
            return (state.thread, state.isShutDown)
        }
        guard !wasShutDown else { return }
        wakeThread()
        if let thread { pthread_join(thread, nil) }
        let parked = state.withLock { state in
            defer { state.parked.removeAll() }
            return state.parked
        }
        for process in parked { await discard(process) }
        _ = wake.withLock { $0.take() }
    }

    /// Ends an init that will not get a job (or failed to start one), reaps it, and removes its
    /// cgroup (emptied by the init's end) and its job's /var/tmp.
    func discard(_ parked: ParkedInit) async {
        parked.end()
        sandbox.scratch?.remove(parked.id)
        if let cgroup = parked.cgroup { await cgroups?.remove(cgroup) }
    }

    /// `discard` for the pool's thread, which cannot wait.
    private func discardNow(_ parked: ParkedInit) {
        parked.end()
        sandbox.scratch?.remove(parked.id)
        if let cgroup = parked.cgroup { cgroups?.removeNow(cgroup) }
    }

    /// Returns once `count` inits are parked (or the pool shut down, or the task was cancelled).
    func waitUntilParked(_ count: Int) async {
        while !Task.isCancelled {
            let before = parkedChanged.snapshot
            let done = state.withLock { $0.parked.count >= count || $0.isShutDown }
            if done { return }
            await parkedChanged.wait(whileGenerationIs: before.generation)
        }
    }

    /// How many starts found no parked init and prepared their own.
    var preparedOnDemand: Int { state.withLock { $0.preparedOnDemand } }

    /// The PIDs of the parked inits.
    var parkedProcesses: [Int32] { state.withLock { $0.parked.map(\.pid) } }

    /// How many inits are parked now.
    var parkedCount: Int { state.withLock { $0.parked.count } }

    /// The job ids the parked inits carry, the next one taken last.
    var parkedIDs: [JobID] { state.withLock { $0.parked.map(\.id) } }

    /// A fresh init for the same job id and cgroup, in place of one that is gone; `limits` are
    /// those the cgroup has by now.
    func replace(_ gone: ParkedInit, limits: ResourceLimits) throws(JobWorkerError) -> ParkedInit {
        gone.end()
        return try startInit(id: gone.id, cgroup: gone.cgroup, limits: limits)
    }

    /// Creates a job's cgroup (with the preset limits) and /var/tmp, and starts an init in them,
    /// in new namespaces, its filesystem prepared; the init waits on its control socket.
    func startInit() throws(JobWorkerError) -> ParkedInit {
        let id = JobID()
        let limits = presetLimits()
        let cgroup = try cgroups?.create(named: id.description, limits: limits)
        do {
            _ = try sandbox.scratch?.create(for: id)
            return try startInit(id: id, cgroup: cgroup, limits: limits)
        } catch {
            sandbox.scratch?.remove(id)
            if let cgroup { cgroups?.removeNow(cgroup) }
            throw error
        }
    }

    private func startInit(id: JobID, cgroup: (any JobCgroup)?, limits: ResourceLimits) throws(JobWorkerError)
        -> ParkedInit
    {
        let placement = try cgroup?.openPlacement() ?? .none
        var ends: [Int32] = [-1, -1]
        try systemCall("socketpair") {
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends)
        }
        let workerEnd = FileDescriptor(adopting: ends[0])
        let initEnd = FileDescriptor(adopting: ends[1])  // the init has its own copy once started
        var launcher = ProcessLauncher(
            executablePath: initPath, argumentVector: ["jobworker-init"], environment: [:], workingDirectory: "/",
            stdinDescriptor: devNull, outputDescriptor: devNull, cgroup: placement.placement,
            hostname: id.shortDescription)
        launcher.sandbox = sandbox
        launcher.scratchDirectory = sandbox.scratch?.path(of: id)
        let process = try launcher.launch(namespaces: JW_ALL_NAMESPACES, control: initEnd.rawValue)
        initEnd.closeNow()
        return ParkedInit(
            id: id, pid: process.pid, pidfd: process.pidfd, channel: InitChannel(socket: workerEnd), cgroup: cgroup,
            limits: limits)
    }

    /// Wakes the thread (an eventfd write never blocks here).
    private func wakeThread() {
        var one: UInt64 = 1
        _ = write(wakeNumber, &one, MemoryLayout<UInt64>.size)
    }

    private func run() {
        // Refilling must never compete with a start (or anything else) for the CPU.
        _ = linux_make_thread_idle()
        while true {
            let (isShutDown, missing) = state.withLock { ($0.isShutDown, capacity - $0.parked.count) }
            if isShutDown { return }
            for _ in 0..<max(0, missing) {
                // On failure, leave the pool short: starts launch their own init and report why.
                let process: ParkedInit
                do {
                    process = try startInit()
                } catch {
                    logger.warning("cannot prepare a job init ahead of time: \(error)")
                    break
                }
                let kept = state.withLock { state -> Bool in
                    guard !state.isShutDown else { return false }
                    state.parked.append(process)
                    return true
                }
                parkedChanged.signal()
                if !kept {
                    discardNow(process)
                    return
                }
            }
            // Sleep until an init is taken or the pool shuts down.
            var count: UInt64 = 0
            _ = read(wakeNumber, &count, MemoryLayout<UInt64>.size)
        }
    }
}
