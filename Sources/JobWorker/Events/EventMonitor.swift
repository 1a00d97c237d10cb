import CLinuxEvents
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Waits on the kernel for the two events the worker reacts to, on one dedicated thread:
/// a job's process has exited (its pidfd became readable) and a job's output log was written
/// (inotify IN_MODIFY).
///
/// One epoll set serves every job, so the cost of a job is two registrations, not a thread, and
/// nothing is ever polled. Handlers run on the monitor thread: they must be short and must not
/// block (reaping an exited child and resuming continuations are both immediate). Registrations
/// make their (non-blocking) system call under the lock, so none can touch a descriptor that
/// `shutdown` has closed and the process may have reused.
final class EventMonitor: Sendable {
    typealias Handler = @Sendable () -> Void

    /// Identifies a write watch, for `removeWriteWatch`.
    struct WriteWatch: Sendable, Hashable {
        fileprivate let descriptor: Int32
    }

    private enum Key {
        static let wake: UInt64 = 0
        static let inotify: UInt64 = 1
        static let firstPidfd: UInt64 = 2
    }

    private struct State {
        var exitHandlers: [Int32: Handler] = [:]
        var writeHandlers: [Int32: Handler] = [:]
        var isShutDown = false
        var thread: pthread_t?
    }

    /// The epoll set, the inotify instance and the wake-up eventfd; closed by `shutdown` once
    /// the thread has stopped (and the numbers below are no longer used).
    private let descriptors: Mutex<Descriptors?>
    private let epollDescriptor: Int32
    private let inotifyDescriptor: Int32
    private let wakeDescriptor: Int32
    private let state = Mutex(State())

    private struct Descriptors: ~Copyable {
        let epoll: FileDescriptor
        let inotify: FileDescriptor
        let wake: FileDescriptor
    }

    init() throws(JobWorkerError) {
        let epoll = try FileDescriptor("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        let inotify = try FileDescriptor("inotify_init1") { inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) }
        let wake = try FileDescriptor("eventfd") { eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK)) }
        try Self.add(inotify.rawValue, key: Key.inotify, to: epoll.rawValue)
        try Self.add(wake.rawValue, key: Key.wake, to: epoll.rawValue)
        epollDescriptor = epoll.rawValue
        inotifyDescriptor = inotify.rawValue
        wakeDescriptor = wake.rawValue
        descriptors = Mutex(Descriptors(epoll: epoll, inotify: inotify, wake: wake))
        try startThread()
    }

    /// Calls `handler` once, when the process behind `pidfd` has exited.
    func onExit(of pidfd: Int32, _ handler: @escaping Handler) throws(JobWorkerError) {
        // Registered under the lock, so that shutdown cannot close the epoll set meanwhile.
        try state.withLock { state throws(JobWorkerError) in
            guard !state.isShutDown else { throw Self.shutDownError }
            state.exitHandlers[pidfd] = handler
            do throws(JobWorkerError) {
                try Self.add(pidfd, key: Key.firstPidfd + UInt64(pidfd), to: epollDescriptor)
            } catch {
                state.exitHandlers.removeValue(forKey: pidfd)
                throw error
            }
        }
    }

    /// Calls `handler` after writes to the file at `path`, until the watch is removed.
    /// Bursts of writes may be reported once (inotify merges identical pending events).
    func onWrite(to path: String, _ handler: @escaping Handler) throws(JobWorkerError) -> WriteWatch {
        try state.withLock { state throws(JobWorkerError) in
            guard !state.isShutDown else { throw Self.shutDownError }
            let descriptor = try systemCall("inotify_add_watch") {
                inotify_add_watch(inotifyDescriptor, path, UInt32(IN_MODIFY))
            }
            state.writeHandlers[descriptor] = handler
            return WriteWatch(descriptor: descriptor)
        }
    }

    func removeWriteWatch(_ watch: WriteWatch) {
        state.withLock { state in
            guard !state.isShutDown else { return }
            state.writeHandlers.removeValue(forKey: watch.descriptor)
            _ = inotify_rm_watch(inotifyDescriptor, watch.descriptor)
        }
    }

    private static let shutDownError = JobWorkerError(.shuttingDown, "the worker is shutting down")

    /// Stops the thread and closes the monitor's descriptors. Pending handlers are dropped.
    func shutdown() {
        let thread = state.withLock { state -> pthread_t? in
            guard !state.isShutDown else { return nil }
            state.isShutDown = true
            return state.thread
        }
        guard let thread else { return }
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, MemoryLayout<UInt64>.size)
        pthread_join(thread, nil)
        _ = descriptors.withLock { $0.take() }
    }

    // MARK: - The monitor thread

    private func startThread() throws(JobWorkerError) {
        let thread = try startDedicatedThread("event monitor") { self.run() }
        state.withLock { $0.thread = thread }
    }

    private func run() {
        let capacity = 64
        var events = [epoll_event](repeating: epoll_event(), count: capacity)
        while true {
            let count = epoll_wait(epollDescriptor, &events, Int32(capacity), -1)
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            for event in events.prefix(Int(count)) {
                switch event.data.u64 {
                case Key.wake:
                    return
                case Key.inotify:
                    drainInotify()
                case let key:
                    processExited(pidfd: Int32(key - Key.firstPidfd))
                }
            }
        }
    }

    private func processExited(pidfd: Int32) {
        _ = epoll_ctl(epollDescriptor, EPOLL_CTL_DEL, pidfd, nil)
        let handler = state.withLock { $0.exitHandlers.removeValue(forKey: pidfd) }
        handler?()
    }

    private func drainInotify() {
        let bufferSize = 16 * 1024
        withUnsafeTemporaryAllocation(
            byteCount: bufferSize, alignment: MemoryLayout<inotify_event>.alignment
        ) { buffer in
            while true {
                let length = read(inotifyDescriptor, buffer.baseAddress, bufferSize)
                guard length > 0 else { return }
                var written = Set<Int32>()
                var offset = 0
                while offset + MemoryLayout<inotify_event>.size <= length {
                    let event = buffer.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    if event.mask & UInt32(IN_MODIFY) != 0 {
                        written.insert(event.wd)
                    }
                    offset += MemoryLayout<inotify_event>.size + Int(event.len)
                }
                let handlers = state.withLock { state in written.compactMap { state.writeHandlers[$0] } }
                for handler in handlers { handler() }
            }
        }
    }

    private static func add(_ descriptor: Int32, key: UInt64, to epoll: Int32) throws(JobWorkerError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = key
        try systemCall("epoll_ctl") { epoll_ctl(epoll, EPOLL_CTL_ADD, descriptor, &event) }
    }
}
