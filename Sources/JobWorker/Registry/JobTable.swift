import Foundation
import Synchronization

/// Every job this worker knows, under one lock: the running ones (`Job`), the finished ones
/// (their recorded status, this run's and previous runs'), their order, and the admission of
/// new starts against `maximumRunningJobs`.
final class JobTable: Sendable {
    struct Contents {
        var jobs: [JobID: Job] = [:]
        /// Finished jobs, as recorded (ended, or lost). Change it only through `addFinished` and
        /// `removeFinished`, which keep the figures below.
        private(set) var history: [JobID: JobStatus] = [:]
        /// The disk space each finished job's output takes (allocated blocks, not its size: a
        /// sparse log of a job that `ftruncate`d its output to terabytes takes none).
        private(set) var allocatedOutputBytes: [JobID: UInt64] = [:]
        /// Per owner, the disk space of its finished jobs' output together: retention keeps a
        /// pool per owner, so that no owner's output can evict another owner's jobs.
        private(set) var finishedOutputBytesByOwner: [String: UInt64] = [:]
        /// The earliest end among finished jobs (a lower bound after removals).
        private(set) var earliestFinishedEnd: WallClockTime?
        /// Start order, oldest first, this run's jobs and the history's.
        var order: [JobID] = []
        /// The last sequence number given to a start; the store keeps the same order.
        var lastSequence: Int64 = 0
        /// Jobs that have not ended, and starts under way: together bounded by
        /// `maximumRunningJobs`, checked and reserved in one step.
        var running: Set<JobID> = []
        var startsUnderWay = 0
        /// Per owner: running jobs and starts under way, bounded by `maximumRunningJobsPerOwner`.
        var ownerLoad: [String: Int] = [:]
        /// Per owner: start tokens, while the owner's bucket is not full.
        var startTokens: [String: StartTokens] = [:]
        var isShuttingDown = false
        /// Client tokens in use, per owner: by a start under way, or by a job still kept.
        var clientTokens: [ClientTokenKey: ClientTokenClaim] = [:]
        var clientTokenOfJob: [JobID: ClientTokenKey] = [:]
        /// Job watchers, fed each start and end under this lock; none after `endWatchers`.
        var watchers: [Int: JobChangeSubscription] = [:]
        var nextWatcherID = 0
        var watchersEnded = false

        /// Every job, newest first.
        func entries() -> [Entry] {
            order.reversed().compactMap { id -> Entry? in
                jobs[id].map(Entry.live) ?? history[id].map(Entry.recorded)
            }
        }

        /// Hands a change to every watcher, and drops those whose reader has stopped.
        mutating func offerToWatchers(_ status: JobStatus) {
            for (id, watcher) in watchers {
                if watcher.isTerminated { watchers[id] = nil } else { watcher.offer(status) }
            }
        }

        /// Forgets the client token of a job no longer kept (retention deleted it).
        mutating func releaseClientToken(of id: JobID) {
            if let key = clientTokenOfJob.removeValue(forKey: id) { clientTokens[key] = nil }
        }

        mutating func changeLoad(of owner: String, by change: Int) {
            let load = ownerLoad[owner, default: 0] + change
            ownerLoad[owner] = load > 0 ? load : nil
        }

        mutating func addFinished(_ status: JobStatus, allocatedBytes: UInt64) {
            removeFinished(status.id)
            history[status.id] = status
            allocatedOutputBytes[status.id] = allocatedBytes
            finishedOutputBytesByOwner[status.owner, default: 0] += allocatedBytes
            let end = status.endedAt ?? status.startedAt
            earliestFinishedEnd = min(earliestFinishedEnd ?? end, end)
        }

        mutating func removeFinished(_ id: JobID) {
            guard let removed = history.removeValue(forKey: id) else { return }
            let bytes = allocatedOutputBytes.removeValue(forKey: id) ?? 0
            let remaining = finishedOutputBytesByOwner[removed.owner, default: 0] - bytes
            finishedOutputBytesByOwner[removed.owner] = remaining > 0 ? remaining : nil
        }

        /// Makes `earliestFinishedEnd` exact again, after removals (O(n): rarely).
        mutating func recomputeEarliestFinishedEnd() {
            earliestFinishedEnd = history.values.map { $0.endedAt ?? $0.startedAt }.min()
        }
    }

    /// A client token, scoped to its owner: two owners may use the same token.
    struct ClientTokenKey: Hashable, Sendable {
        var owner: String
        var token: String
    }

    /// Who holds a client token, and the fingerprint of the spec it was given with.
    enum ClientTokenClaim {
        case starting(fingerprint: [UInt8])
        case job(JobID, fingerprint: [UInt8])
    }

    /// What a start with a client token is to do.
    enum ClientTokenOutcome {
        /// Go on: the token is the start's until it publishes its job or gives up.
        case claimed
        /// Start nothing: the token's job is this one.
        case existing(JobID)
    }

    /// A job of this run, or the record of one from a previous run.
    enum Entry {
        case live(Job)
        case recorded(JobStatus)

        var id: JobID {
            switch self {
            case .live(let job): job.id
            case .recorded(let status): status.id
            }
        }

        var owner: String {
            switch self {
            case .live(let job): job.owner
            case .recorded(let status): status.owner
            }
        }
    }

    let contents = Mutex(Contents())
    /// Signalled when a job ends (retention has something new to consider).
    let jobEnded = ChangeSignal()
    /// Signalled when a start under way has been published or given up.
    private let startsChanged = ChangeSignal()

    init() {}

    /// Takes in what `Recovery` found of previous runs.
    func restore(_ recovery: Recovery, stateDirectory: StateDirectory) {
        let allocated = recovery.history.map { stateDirectory.allocatedOutputBytes(of: $0.id) }
        contents.withLock { contents in
            contents.lastSequence = recovery.lastSequence
            contents.order = recovery.order
            for (status, bytes) in zip(recovery.history, allocated) {
                contents.addFinished(status, allocatedBytes: bytes)
            }
            for (id, token) in recovery.clientTokens {
                contents.clientTokens[token.key] = .job(id, fingerprint: token.fingerprint)
                contents.clientTokenOfJob[id] = token.key
            }
        }
    }

    /// Claims `key` for a start with the spec `fingerprint`: the job already holding it, the
    /// claim, or `alreadyExists` for a different spec. A start with the same token and spec under
    /// way is waited for (a client's retry racing its first try), then decides.
    func claim(_ key: ClientTokenKey, fingerprint: [UInt8]) async throws(JobWorkerError) -> ClientTokenOutcome {
        while true {
            let before = startsChanged.snapshot
            let outcome = try contents.withLock { contents throws(JobWorkerError) -> ClientTokenOutcome? in
                let held: [UInt8]
                switch contents.clientTokens[key] {
                case nil:
                    guard !contents.isShuttingDown else {
                        throw JobWorkerError(.shuttingDown, "the worker is shutting down")
                    }
                    contents.clientTokens[key] = .starting(fingerprint: fingerprint)
                    return .claimed
                case .starting(let other):
                    held = other
                    if held == fingerprint { return nil }
                case .job(let id, let other):
                    held = other
                    if held == fingerprint { return .existing(id) }
                }
                throw JobWorkerError(
                    .alreadyExists,
                    "client token \(key.token.debugDescription) was given with a different request: use a new token for a new job"
                )
            }
            if let outcome { return outcome }
            await startsChanged.wait(whileGenerationIs: before.generation)
            if Task.isCancelled { throw JobWorkerError(.shuttingDown, "the start was cancelled") }
        }
    }

    /// Gives up the claim of a start that failed: a retry starts afresh.
    func releaseClaim(_ key: ClientTokenKey) {
        contents.withLock { contents in
            if case .starting = contents.clientTokens[key] { contents.clientTokens[key] = nil }
        }
        startsChanged.signal()
    }

    /// Reserves a running slot for `owner`'s start, or refuses it: past the server's limit, the
    /// owner's limit, or the owner's start rate, as the start's `policy` sets them. Checked and
    /// reserved in one step.
    func reserveStart(for owner: String, policy: WorkerPolicy, now: ContinuousClock.Instant = .now)
        throws(JobWorkerError)
    {
        let (limit, ownerLimit, rate) = (
            policy.maximumRunningJobs, policy.maximumRunningJobsPerOwner, policy.startRatePerOwner
        )
        try contents.withLock { contents throws(JobWorkerError) in
            guard !contents.isShuttingDown else {
                throw JobWorkerError(.shuttingDown, "the worker is shutting down")
            }
            guard contents.running.count + contents.startsUnderWay < limit else {
                throw JobWorkerError(
                    .resourceExhausted, "\(limit) jobs are running, the server's limit: try again when one has ended")
            }
            if let ownerLimit, contents.ownerLoad[owner, default: 0] >= ownerLimit {
                throw JobWorkerError(
                    .resourceExhausted,
                    "\(owner) has \(ownerLimit) jobs running, the limit per owner: try again when one has ended")
            }
            if let rate, rate.perSecond > 0, rate.burst > 0 {
                var tokens = contents.startTokens[owner] ?? StartTokens(rate: rate, now: now)
                let wait = tokens.take(rate: rate, now: now)
                contents.startTokens[owner] = tokens
                if let wait {
                    throw JobWorkerError(
                        .resourceExhausted,
                        "\(owner) started more than \(rate.burst) jobs at \(rate.perSecond.formatted()) a second, the "
                            + "rate per owner: try again in \(wait.formattedSeconds)")
                }
                // Full buckets are forgotten: the map holds only owners that started within the
                // last burst ÷ rate seconds (2 s by default), so this sweep stays short.
                contents.startTokens = contents.startTokens.filter { !$0.value.isFull(rate: rate, now: now) }
            }
            contents.startsUnderWay += 1
            contents.changeLoad(of: owner, by: 1)
        }
    }

    /// Gives back a reservation whose start failed.
    func cancelReservation(for owner: String) {
        contents.withLock { contents in
            contents.startsUnderWay -= 1
            contents.changeLoad(of: owner, by: -1)
        }
        startsChanged.signal()
    }

    /// Gives a starting job its place in the order of starts, and the sequence number its record
    /// keeps that order with. The job is not visible yet: no lookup or list finds it until
    /// `publish`, so nobody can stop or wait for a job whose record may still fail.
    func assignSequence(to id: JobID) -> Int64 {
        contents.withLock { contents in
            contents.order.append(id)
            contents.lastSequence += 1
            return contents.lastSequence
        }
    }

    /// Undoes `assignSequence` for a start that failed before `publish`.
    func withdraw(_ id: JobID) {
        contents.withLock { contents in contents.order.removeAll { $0 == id } }
    }

    /// Makes a recorded job visible and turns its reservation into its running slot, in one
    /// step. Returns whether the worker began shutting down meanwhile.
    func publish(_ job: Job, clientToken: ClientTokenKey? = nil) -> Bool {
        let isShuttingDown = contents.withLock { contents in
            if let key = clientToken, case .starting(let fingerprint) = contents.clientTokens[key] {
                contents.clientTokens[key] = .job(job.id, fingerprint: fingerprint)
                contents.clientTokenOfJob[job.id] = key
            }
            contents.startsUnderWay -= 1
            contents.jobs[job.id] = job
            contents.running.insert(job.id)
            if !contents.watchers.isEmpty {
                contents.offerToWatchers(job.initialStatus)
            }
            return contents.isShuttingDown
        }
        startsChanged.signal()
        return isShuttingDown
    }

    /// Takes in a job adopted from a previous run (already in `order`, from its record).
    func registerAdopted(_ job: Job) {
        contents.withLock { contents in
            contents.jobs[job.id] = job
            contents.running.insert(job.id)
            contents.changeLoad(of: job.owner, by: 1)
        }
    }

    /// The job's running slot is free again: its process and cgroup are gone.
    func freeSlot(of job: Job) {
        contents.withLock { contents in
            if contents.running.remove(job.id) != nil { contents.changeLoad(of: job.owner, by: -1) }
        }
    }

    /// From now on the job is its record: no process, no watches, no file reads.
    func recordFinished(_ final: JobStatus, allocatedBytes: UInt64) {
        contents.withLock { contents in
            contents.jobs[final.id] = nil
            contents.addFinished(final, allocatedBytes: allocatedBytes)
            contents.offerToWatchers(final)
        }
        WorkerMetrics.jobEnded(final.state)
        jobEnded.signal()
    }

    func entry(_ id: JobID) throws(JobWorkerError) -> Entry {
        let found = contents.withLock { contents in
            contents.jobs[id].map(Entry.live) ?? contents.history[id].map(Entry.recorded)
        }
        guard let found else { throw JobWorkerError.jobNotFound(id) }
        return found
    }

    /// Every job, newest first.
    func entries() -> [Entry] {
        contents.withLock { $0.entries() }
    }

    /// Jobs that have not ended yet.
    var runningCount: Int { contents.withLock { $0.running.count } }

    /// Every job, newest first, and a subscription to every start and end from this moment on,
    /// taken in one step: each change is either in the entries or in the subscription, never in
    /// both or neither. A subscription whose reader stopped is dropped at the next change.
    func subscribe(_ filter: JobFilter, backlog: Int) -> (entries: [Entry], changes: JobChangeSubscription) {
        let (entries, subscription) = contents.withLock { contents in
            defer { contents.nextWatcherID += 1 }
            let subscription = JobChangeSubscription(id: contents.nextWatcherID, filter: filter, backlog: backlog)
            if contents.watchersEnded {
                subscription.end(.shuttingDown)
            } else {
                contents.watchers[subscription.id] = subscription
            }
            // Only the owner's, when the filter names one: the snapshot costs what the caller may see.
            let entries = contents.entries()
            guard let owner = filter.owner else { return (entries, subscription) }
            return (entries.filter { $0.owner.utf8.elementsEqual(owner.utf8) }, subscription)
        }
        return (entries, subscription)
    }

    /// Ends every watcher after the changes already queued, and refuses new ones: the last
    /// changes of a shutdown are the ends of the jobs it stopped.
    func endWatchers() {
        let watchers = contents.withLock { contents in
            contents.watchersEnded = true
            defer { contents.watchers.removeAll() }
            return Array(contents.watchers.values)
        }
        for watcher in watchers { watcher.end(.shuttingDown) }
    }

    /// Refuses new starts from now on, waits for the starts under way to be published or given
    /// up, and returns the jobs of this run; nil if a shutdown had already begun.
    func beginShutdown() async -> [Job]? {
        let wasShuttingDown = contents.withLock { contents in
            defer { contents.isShuttingDown = true }
            return contents.isShuttingDown
        }
        guard !wasShuttingDown else { return nil }
        while true {
            let before = startsChanged.snapshot
            let jobs = contents.withLock { $0.startsUnderWay == 0 ? Array($0.jobs.values) : nil }
            if let jobs { return jobs }
            await startsChanged.wait(whileGenerationIs: before.generation)
        }
    }
}
