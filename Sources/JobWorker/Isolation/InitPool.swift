import CJobLauncher
import CLinuxEvents
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A jobworker-init started ahead of time: PID 1 of fresh PID, mount, network, UTS and IPC
/// namespaces, waiting on its control socket for a job.
struct ParkedInit: Sendable {
    let pid: Int32
    let pidfd: Int32
    /// The worker's end of the control socket.
    let control: Int32

    /// Ends an init that will not get a job (or failed to start one) and reaps it.
    func discard() {
        kill(pid, SIGKILL)
        var info = siginfo_t()
        while waitid(P_PIDFD, id_t(pidfd), &info, WEXITED) < 0 && errno == EINTR {}
        closeDescriptor(pidfd)
        closeDescriptor(control)
    }
}

/// Keeps a few inits parked, so a start only hands over the job.
///
/// Measured here, the namespaces cost ≈ 0.45 ms at p50 (≈ 5 ms at p99, mostly the network
/// namespace) and exec'ing even a small static init ≈ 0.35 ms: together more than everything
/// else a start does. A dedicated thread starts inits in advance and refills after every take;
/// when the pool is empty (or sized 0) a start launches its init on the spot, through the very
/// same code, so the pool changes when the work is done, never what is done.
final class InitPool: Sendable {
    private struct State {
        var parked: [ParkedInit] = []
        var isShutDown = false
        var thread: pthread_t?
    }

    private let initPath: String
    private let capacity: Int
    /// /dev/null, read-write: the stdio of a parked init.
    private let devNull: Int32
    private let wakeDescriptor: Int32
    private let state = Mutex(State())

    init(initPath: String, capacity: Int, devNull: Int32) throws(JobWorkerError) {
        self.initPath = initPath
        self.capacity = capacity
        self.devNull = devNull
        wakeDescriptor = try systemCall("eventfd") { eventfd(0, Int32(EFD_CLOEXEC)) }
        guard capacity > 0 else { return }
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { context in
                Unmanaged<InitPool>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<InitPool>.fromOpaque(context).release()
            closeDescriptor(wakeDescriptor)
            throw JobWorkerError.system("starting the init pool thread", errno: result)
        }
        state.withLock { $0.thread = thread }
    }

    /// A parked init, from the pool or started now. Call `refill()` once the job has started:
    /// starting the replacement meanwhile would compete with this start for the CPU.
    func take() throws(JobWorkerError) -> ParkedInit {
        let pooled = state.withLock { $0.parked.popLast() }
        guard let pooled else { return try startInit() }
        return pooled
    }

    /// Lets the thread start inits until the pool is full again.
    func refill() {
        wake()
    }

    /// Stops the thread and ends the inits still parked.
    func shutdown() {
        let thread = state.withLock { state -> pthread_t? in
            state.isShutDown = true
            return state.thread
        }
        wake()
        if let thread { pthread_join(thread, nil) }
        let parked = state.withLock { state in
            defer { state.parked.removeAll() }
            return state.parked
        }
        for process in parked { process.discard() }
        closeDescriptor(wakeDescriptor)
    }

    /// Starts one init in new namespaces; it waits on its control socket.
    func startInit() throws(JobWorkerError) -> ParkedInit {
        var ends: [Int32] = [-1, -1]
        try systemCall("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) }
        defer { closeDescriptor(ends[1]) }
        var result = jw_spawn_result()
        let status = initPath.withCString { path in
            var argv: [UnsafeMutablePointer<CChar>?] = [strdup("jobworker-init"), nil]
            var envp: [UnsafeMutablePointer<CChar>?] = [nil]
            defer { free(argv[0]) }
            return argv.withUnsafeMutableBufferPointer { argv in
                envp.withUnsafeMutableBufferPointer { envp in
                    "/".withCString { root in
                        var attributes = jw_spawn_attributes(
                            path: path, argv: argv.baseAddress, envp: envp.baseAddress, working_directory: root,
                            stdin_fd: devNull, output_fd: devNull, cgroup_fd: -1, cgroup_procs_fds: nil,
                            cgroup_procs_count: 0, namespace_flags: JW_ALL_NAMESPACES, hostname: nil,
                            control_fd: ends[1])
                        return jw_spawn(&attributes, &result)
                    }
                }
            }
        }
        guard status == 0 else {
            closeDescriptor(ends[0])
            throw ProcessLauncher.error(step: result.failed_step, errno: result.error, path: initPath)
        }
        return ParkedInit(pid: result.pid, pidfd: result.pidfd, control: ends[0])
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    private func run() {
        // Refilling must never compete with a start (or anything else) for the CPU.
        _ = linux_make_thread_idle()
        while true {
            let (isShutDown, missing) = state.withLock { ($0.isShutDown, capacity - $0.parked.count) }
            if isShutDown { return }
            for _ in 0..<max(0, missing) {
                // On failure, leave the pool short: starts launch their own init and report why.
                guard let process = try? startInit() else { break }
                let kept = state.withLock { state -> Bool in
                    guard !state.isShutDown else { return false }
                    state.parked.append(process)
                    return true
                }
                if !kept {
                    process.discard()
                    return
                }
            }
            // Sleep until an init is taken or the pool shuts down.
            var count: UInt64 = 0
            _ = read(wakeDescriptor, &count, MemoryLayout<UInt64>.size)
        }
    }
}
