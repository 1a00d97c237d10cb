import Synchronization

/// The armed timeouts of a worker's jobs, so that a worker that shuts down (leaving its jobs to
/// the next one, which arms their timeouts again) stops them all: a timer of the old worker
/// must not stop a job the new one has adopted.
final class TimeoutTimers: Sendable {
    private let timers = Mutex<(tasks: [JobID: Task<Void, Never>], isClosed: Bool)>(([:], false))

    /// Keeps `task` for job `id`; cancels it at once when the worker has shut down.
    func add(_ task: Task<Void, Never>, for id: JobID) {
        let isClosed = timers.withLock { timers in
            if !timers.isClosed { timers.tasks[id] = task }
            return timers.isClosed
        }
        if isClosed { task.cancel() }
    }

    /// Forgets the timer of job `id` (it fired, or the job ended).
    func remove(_ id: JobID) {
        _ = timers.withLock { $0.tasks.removeValue(forKey: id) }
    }

    /// Cancels every timer, and every one added later.
    func cancelAll() {
        let tasks = timers.withLock { timers in
            timers.isClosed = true
            defer { timers.tasks = [:] }
            return Array(timers.tasks.values)
        }
        for task in tasks { task.cancel() }
    }
}
