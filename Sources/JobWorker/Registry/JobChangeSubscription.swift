import Synchronization

/// One watcher's queue of job changes (a start, an end), fed by the job table under its lock so
/// that every watcher sees a job's changes in the order they happened.
///
/// Bounded: a watcher that falls `backlog` changes behind is ended (`overflowed`), never waited
/// for, so a slow watcher costs the server at most its backlog.
final class JobChangeSubscription: Sendable {
    /// Why the changes ended.
    enum EndReason: Sendable {
        case overflowed
        case shuttingDown
    }

    let id: Int
    let filter: JobFilter
    let changes: AsyncStream<JobStatus>
    private let continuation: AsyncStream<JobStatus>.Continuation
    private let endReason = Mutex<EndReason?>(nil)
    private let terminated = Atomic(false)

    init(id: Int, filter: JobFilter, backlog: Int) {
        self.id = id
        self.filter = filter
        (changes, continuation) = AsyncStream.makeStream(of: JobStatus.self, bufferingPolicy: .bufferingOldest(backlog))
        // Runs inside `finish()`, which the table calls under its lock: it must take no lock.
        continuation.onTermination = { [weak self] _ in self?.terminated.store(true, ordering: .relaxed) }
    }

    /// Queues `status` if it matches the filter; a full queue ends the subscription. Never waits.
    func offer(_ status: JobStatus) {
        guard filter.matches(status) else { return }
        if case .dropped = continuation.yield(status) { end(.overflowed) }
    }

    /// Ends the changes after those already queued; the first reason given holds.
    func end(_ reason: EndReason) {
        endReason.withLock { if $0 == nil { $0 = reason } }
        continuation.finish()
    }

    /// Whether the changes have ended, or the watcher stopped reading (its task was cancelled).
    var isTerminated: Bool { terminated.load(ordering: .relaxed) }

    /// Why the changes ended; nil if they have not.
    var reason: EndReason? { endReason.withLock { $0 } }
}
