/// The jobs matching a filter and how they change: first the current status of each (newest
/// first), then one status per start and per end of a matching job, in the order they happened,
/// until the worker shuts down or the reader stops.
///
/// A watcher that falls `WorkerConfiguration.watchBacklog` changes behind is ended with
/// `resourceExhausted` rather than slowing anyone down: it can watch again, which begins with a
/// fresh snapshot. Iterate it once.
public struct JobWatch: AsyncSequence, Sendable {
    public typealias Element = JobStatus

    /// The matching jobs when the watch began.
    public let current: [JobStatus]
    let subscription: JobChangeSubscription
    /// Jobs that had ended by the time their snapshot status was read: their end, if it comes
    /// through the subscription as well, is not reported twice.
    let endedInSnapshot: Set<JobID>

    public func makeAsyncIterator() -> Iterator {
        Iterator(
            current: current.makeIterator(), changes: subscription.changes.makeAsyncIterator(),
            subscription: subscription, endedInSnapshot: endedInSnapshot)
    }

    public struct Iterator: AsyncIteratorProtocol {
        var current: IndexingIterator<[JobStatus]>
        var changes: AsyncStream<JobStatus>.Iterator
        let subscription: JobChangeSubscription
        let endedInSnapshot: Set<JobID>

        /// The next status. Throws `resourceExhausted` for a watcher too far behind,
        /// `shuttingDown` once the worker shuts down, and `CancellationError` when the task is
        /// cancelled.
        public mutating func next() async throws -> JobStatus? {
            if let status = current.next() { return status }
            while let status = await changes.next() {
                if status.state != .running, endedInSnapshot.contains(status.id) { continue }
                return status
            }
            switch subscription.reason {
            case .overflowed:
                throw JobWorkerError(
                    .resourceExhausted, "the watcher fell more than the backlog of changes behind: watch again")
            case .shuttingDown:
                throw JobWorkerError(.shuttingDown, "the worker is shutting down")
            case nil:
                throw CancellationError()
            }
        }
    }
}
