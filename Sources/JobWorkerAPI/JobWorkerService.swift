import CoreMetrics
import Foundation
import GRPCCore
import JobWorker

/// The `jobworker.v1.JobWorker` service: each RPC validates its request, applies the caller's
/// grant (set by `AuthorizationInterceptor`) and delegates to the library's `Worker`.
///
/// A job the caller may not see is NOT_FOUND, exactly like a job that does not exist, so that
/// nobody learns which other jobs exist.
///
/// Everything that blocks (starts, stops, cgroup reads, store writes) runs on `blocking`, never on
/// the event loop that called.
public struct JobWorkerService: Jobworker_V1_JobWorker.SimpleServiceProtocol {
    /// Empty while the server starts: every call is UNAVAILABLE until the worker is made.
    public let workers: WorkerSlot
    /// The largest request of each method.
    public let requestLimits: RequestLimits
    /// Where blocking work runs.
    public let blocking: BlockingWorkExecutor
    /// When it drains, the long calls (output streams, waits, watches) end with UNAVAILABLE, so
    /// that a shutdown never waits on a client: clients resume (output by offset) elsewhere or
    /// once the next server is up.
    public let phase: ServerPhase

    /// Job output sent to readers, all streams together.
    static let bytesStreamed = Counter(label: "jobworker_output_bytes_streamed_total")

    /// StartJob beyond the worker's `maximumRunningJobs` is RESOURCE_EXHAUSTED.
    public init(
        worker: Worker, requestLimits: RequestLimits = RequestLimits(),
        blocking: BlockingWorkExecutor = .shared, phase: ServerPhase = ServerPhase()
    ) {
        self.init(workers: WorkerSlot(worker), requestLimits: requestLimits, blocking: blocking, phase: phase)
    }

    /// A service of the worker `workers` will hold once the server has made it.
    public init(
        workers: WorkerSlot, requestLimits: RequestLimits = RequestLimits(),
        blocking: BlockingWorkExecutor = .shared, phase: ServerPhase = ServerPhase()
    ) {
        self.workers = workers
        self.requestLimits = requestLimits
        self.blocking = blocking
        self.phase = phase
    }

    /// The worker, or UNAVAILABLE while the server starts.
    private var worker: Worker {
        get throws(RPCError) { try workers.required() }
    }

    public func startJob(request: Jobworker_V1_StartJobRequest, context: ServerContext) async throws
        -> Jobworker_V1_StartJobResponse
    {
        let grant = try context.grant
        let spec = JobSpec(
            command: request.command, arguments: request.args, environment: request.env,
            workingDirectory: request.workingDir.isEmpty ? nil : request.workingDir,
            limits: ResourceLimits(request.limits), standardInput: request.hasStdin ? [UInt8](request.stdin) : nil,
            name: request.name, labels: request.labels,
            stopSignal: request.stopSignal == 0 ? SIGTERM : request.stopSignal,
            timeout: request.timeoutMs == 0 ? nil : .milliseconds(Int64(clamping: request.timeoutMs)),
            clientToken: request.clientToken.isEmpty ? nil : request.clientToken)
        let status = try await blocking.run { try await worker.start(spec, owner: grant.identity.name) }
        return .with { $0.status = Jobworker_V1_JobStatus(status) }
    }

    public func stopJob(request: Jobworker_V1_StopJobRequest, context: ServerContext) async throws
        -> Jobworker_V1_StopJobResponse
    {
        let job = try await visibleJob(request.id, context)
        let grace = request.gracePeriodMs == 0 ? nil : Duration.milliseconds(Int64(clamping: request.gracePeriodMs))
        let status = try await blocking.run { try await worker.stop(job.id, gracePeriod: grace) }
        return .with { $0.status = Jobworker_V1_JobStatus(status) }
    }

    public func getJobStatus(request: Jobworker_V1_GetJobStatusRequest, context: ServerContext) async throws
        -> Jobworker_V1_GetJobStatusResponse
    {
        let job = try await visibleJob(request.id, context)
        return .with { $0.status = Jobworker_V1_JobStatus(job) }
    }

    public func streamJobOutput(
        request: Jobworker_V1_StreamJobOutputRequest, response: RPCWriter<Jobworker_V1_StreamJobOutputResponse>,
        context: ServerContext
    ) async throws {
        // The registered handler streams `OutputChunk`s (`streamOutput`); this is the generated
        // protocol's form of the same, one decoded message per chunk.
        try await streamOutput(request: request, context: context) { chunk in
            try await response.write(
                try Jobworker_V1_StreamJobOutputResponse(serializedBytes: chunk.wire.withUnsafeBytes { [UInt8]($0) }))
        }
    }

    /// Streams the job's output from the request's offset as `OutputChunk`s, live until the job
    /// ends, each read from the log straight into the message that is sent.
    func streamOutput(
        request: Jobworker_V1_StreamJobOutputRequest, context: ServerContext,
        write: @escaping @Sendable (OutputChunk) async throws -> Void
    ) async throws {
        let job = try await visibleJob(request.id, context)
        let output = try worker.output(of: job.id, from: request.offset)
        let start = request.offset
        try await phase.bound(context) {
            var offset = start
            var reader = output.makeAsyncIterator()
            while let count = try await reader.waitForBytes(atMost: OutputChunk.maximumDataBytes) {
                try await write(try OutputChunk(offset: offset, count: count) { try reader.read(into: $0) })
                offset += UInt64(count)
                Self.bytesStreamed.increment(by: Int64(count))
            }
        }
    }

    public func signalJob(request: Jobworker_V1_SignalJobRequest, context: ServerContext) async throws
        -> Jobworker_V1_SignalJobResponse
    {
        let job = try await visibleJob(request.id, context)
        let status = try await blocking.run { try worker.signal(job.id, request.signal) }
        return .with { $0.status = Jobworker_V1_JobStatus(status) }
    }

    public func waitJob(request: Jobworker_V1_WaitJobRequest, context: ServerContext) async throws
        -> Jobworker_V1_WaitJobResponse
    {
        let job = try await visibleJob(request.id, context)
        let final: JobStatus
        do {
            final = try await phase.bound(context) { try await worker.waitUntilEnded(job.id) }
        } catch is CancellationError {
            throw RPCError(code: .cancelled, message: "the wait was cancelled")
        }
        return .with { $0.status = Jobworker_V1_JobStatus(final) }
    }

    public func listJobs(request: Jobworker_V1_ListJobsRequest, context: ServerContext) async throws
        -> Jobworker_V1_ListJobsResponse
    {
        guard let filter = try visibleJobs(request.filter, context) else { return .init() }
        let size = request.pageSize == 0 ? 100 : Int(min(request.pageSize, 1000))
        let cursor: JobID?
        if request.pageToken.isEmpty {
            cursor = nil
        } else {
            guard let token = JobID(request.pageToken) else {
                throw RPCError(
                    code: .invalidArgument, message: "malformed page token: give the next_page_token of a page")
            }
            cursor = token
        }
        let page = try await blocking.run { try worker.list(matching: filter, after: cursor, limit: size) }
        return .with {
            $0.jobs = page.jobs.map(Jobworker_V1_JobStatus.init)
            $0.nextPageToken = page.next?.description ?? ""
        }
    }

    public func watchJobs(
        request: Jobworker_V1_WatchJobsRequest, response: RPCWriter<Jobworker_V1_WatchJobsResponse>,
        context: ServerContext
    ) async throws {
        guard let filter = try visibleJobs(request.filter, context) else {
            // Another owner's jobs, for a caller who sees only its own: none now, none ever; the
            // call stays open, as a watch does, until the client or the server ends it.
            do {
                try await phase.bound(context) {
                    try await context.cancellation.cancelled
                    throw CancellationError()
                }
            } catch is CancellationError {
                throw RPCError(code: .cancelled, message: "the watch was cancelled")
            }
            return
        }
        // The snapshot reads the running jobs' cgroups.
        let worker = try self.worker
        let watch = try await blocking.run { worker.watch(matching: filter) }
        do {
            try await phase.bound(context) {
                for try await status in watch {
                    try await response.write(.with { $0.status = Jobworker_V1_JobStatus(status) })
                }
            }
        } catch is CancellationError {
            throw RPCError(code: .cancelled, message: "the watch was cancelled")
        }
    }

    /// The filter of a listing or watch, narrowed to the caller's own jobs when its grant covers
    /// only those; nil when it asks for another owner's jobs, of which it may see none.
    private func visibleJobs(_ request: Jobworker_V1_JobFilter, _ context: ServerContext) throws -> JobFilter? {
        let grant = try context.grant
        var filter = try JobFilter(request)
        if grant.scope == .own {
            if let owner = filter.owner, !owner.utf8.elementsEqual(grant.identity.name.utf8) { return nil }
            filter.owner = grant.identity.name
        }
        return filter
    }

    /// The status of a job the caller may see: INVALID_ARGUMENT for a malformed id, NOT_FOUND for
    /// an unknown job and for another owner's job when the grant covers only the caller's own.
    private func visibleJob(_ text: String, _ context: ServerContext) async throws -> JobStatus {
        let grant = try context.grant
        guard let id = JobID(text) else {
            throw RPCError(
                code: .invalidArgument, message: "malformed job id \(EscapedText.quoted(text)): expected a UUID")
        }
        // A running job's status reads its cgroup.
        let worker = try self.worker
        let status = try await blocking.run { try? worker.status(of: id) }
        guard let status, grant.mayAccess(jobOwnedBy: status.owner) else {
            throw JobWorkerError(.jobNotFound, "job \(id) not found")
        }
        return status
    }
}
