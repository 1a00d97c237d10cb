import NIOCore
import NIOPosix

/// Threads of their own for the work a request makes that blocks: starting a job (its clone,
/// cgroup writes, the wait for the init's reply), stopping one, reading its cgroup for a
/// status, and writing the job store.
///
/// Swift concurrency runs on SwiftNIO's event loops in the server (`RuntimeTuning`): without
/// this, each start held an event loop for a millisecond or more, and every connection on that
/// loop (status calls, output streams) waited behind it. The service runs such work with this
/// executor as its task executor preference, so an event loop only moves bytes and hands work
/// over (docs/DESIGN.md, "What runs where").
public final class BlockingWorkExecutor: TaskExecutor {
    private let pool: NIOThreadPool

    /// The number of threads: enough that a few slow starts leave room for status reads.
    public static var defaultThreadCount: Int {
        max(4, 2 * System.coreCount)
    }

    /// One for the whole process, for services built without one of their own; never shut down.
    public static let shared = BlockingWorkExecutor()

    public init(threads: Int = BlockingWorkExecutor.defaultThreadCount) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        pool.submit { state in
            switch state {
            case .active:
                job.runSynchronously(on: executor)
            case .cancelled:
                // The pool has shut down: the work still has to run, on Swift's executor (never
                // inline in whoever enqueued it, which may hold a lock or be an event loop).
                globalConcurrentExecutor.enqueue(job)
            }
        }
    }

    /// Runs `body` on these threads; the caller resumes where it was.
    public func run<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
        try await withTaskExecutorPreference(self) { try await body() }
    }

    /// Stops the threads; work still queued, or enqueued later, runs on Swift's executor.
    public func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}
