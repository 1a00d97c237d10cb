import GRPCCore
import JobWorker
import Synchronization

/// The worker a server serves, which may not exist yet: a server listens first, so that health
/// checks see it NOT_SERVING while its worker is made and adopts the jobs of the previous run,
/// and the job API answers UNAVAILABLE until then instead of refusing connections.
public final class WorkerSlot: Sendable {
    private let worker: Mutex<Worker?>

    /// A slot holding `worker`, or empty until `fill(_:)`.
    public init(_ worker: Worker? = nil) {
        self.worker = Mutex(worker)
    }

    /// The worker, once made.
    public var filled: Worker? { worker.withLock { $0 } }

    public func fill(_ worker: Worker) {
        self.worker.withLock { $0 = worker }
    }

    /// The worker, or UNAVAILABLE while the server is still starting: clients call again.
    func required() throws(RPCError) -> Worker {
        guard let worker = filled else {
            throw RPCError(
                code: .unavailable,
                message: "the server is starting: it is adopting the jobs of its previous run; call again shortly")
        }
        return worker
    }
}
