import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One job of this run: what was asked for, the process that stands for it, and its phase.
///
/// The phase (`JobPhase`) changes only under the job's lock, and the signals a transition calls
/// for are sent under that same lock; so a stop and the reap cannot interleave, and a signal
/// only ever reaches an unreaped process. The end is sequenced from outside (`JobEnd`):
/// `reap` on the event monitor's thread, then `complete`, `publishEnd` and `markEndRecorded`.
final class Job: Sendable {
    let id: JobID
    let owner: String
    let command: String
    let arguments: [String]
    let workingDirectory: String
    /// The names the request added to the environment; never the values (they may be secrets).
    let environmentNames: [String]
    /// Whether the job's stdin holds the start request's bytes (else /dev/null).
    let hasStandardInput: Bool
    let name: String
    let labels: [String: String]
    /// What a stop sends first.
    let stopSignal: Int32
    /// The time limit, and when it runs out.
    let timeout: Duration?
    let deadline: WallClockTime?
    let executablePath: String
    let pid: Int32
    let startedAt: WallClockTime
    let outputPath: String
    let limits: ResourceLimits
    /// The job's cgroup, unless resource control is disabled.
    let cgroup: (any JobCgroup)?
    /// The user the job runs as.
    let user: JobUser
    /// Where the job's init counts the output it dropped past the cap (jobs with an init).
    let dropRecordPath: String?
    /// The cap the init copies up to, nil for none: a running job's drop record is read only once
    /// its log has reached it, so that a status costs no more file reads than before.
    let outputLimit: UInt64?

    /// Signalled on every write to the output log; finished once the job has ended.
    let outputChanged: ChangeSignal
    /// Finished once the job has ended and its final status is known.
    private let ended = ChangeSignal()
    /// Finished once the end is on record.
    private let endRecorded = ChangeSignal()

    private struct State {
        var phase = JobPhase()
        /// Until the reap; dropping it closes its pidfd.
        var process: (any JobProcess)?
        /// Sends SIGKILL when a stop's grace period runs out.
        var escalation: Task<Void, Never>?
        /// Known once the cgroup is gone.
        var finalUsage: ResourceUsage?
        /// Known once the init is gone (its drop record is then removed).
        var finalDroppedBytes: UInt64?
    }

    private let state: Mutex<State>

    init(
        id: JobID, owner: String, command: String, arguments: [String], workingDirectory: String = "/",
        environmentNames: [String] = [], hasStandardInput: Bool = false, name: String = "",
        labels: [String: String] = [:], stopSignal: Int32 = SIGTERM, timeout: Duration? = nil,
        deadline: WallClockTime? = nil, executablePath: String,
        process: any JobProcess, startedAt: WallClockTime, outputPath: String, outputChanged: ChangeSignal,
        limits: ResourceLimits, cgroup: (any JobCgroup)?, user: JobUser, dropRecordPath: String? = nil,
        outputLimit: UInt64? = nil
    ) {
        self.outputLimit = outputLimit
        self.user = user
        self.dropRecordPath = dropRecordPath
        self.id = id
        self.owner = owner
        self.command = command
        self.arguments = arguments
        self.workingDirectory = workingDirectory
        self.environmentNames = environmentNames
        self.hasStandardInput = hasStandardInput
        self.name = name
        self.labels = labels
        self.stopSignal = stopSignal
        self.timeout = timeout
        self.deadline = deadline
        self.executablePath = executablePath
        self.pid = process.pid
        self.startedAt = startedAt
        self.outputPath = outputPath
        self.outputChanged = outputChanged
        self.limits = limits
        self.cgroup = cgroup
        self.state = Mutex(State(process: process))
    }

    var status: JobStatus {
        let (phase, finalUsage, finalDropped) = state.withLock { ($0.phase, $0.finalUsage, $0.finalDroppedBytes) }
        var info = stat()
        let outputBytes = stat(outputPath, &info) == 0 ? UInt64(info.st_size) : 0
        let state = phase.reportedState
        let isEnded = state != .running
        var status = JobStatus(
            id: id, owner: owner, command: command, arguments: arguments, executablePath: executablePath,
            state: state, pid: pid, termination: isEnded ? phase.termination : nil, startedAt: startedAt,
            endedAt: isEnded ? phase.endedAt : nil, outputBytes: outputBytes, limits: limits,
            usage: finalUsage ?? cgroup?.usage() ?? ResourceUsage(), user: user,
            workingDirectory: workingDirectory, environmentNames: environmentNames,
            hasStandardInput: hasStandardInput, name: name, labels: labels, stopSignal: stopSignal, timeout: timeout,
            deadline: deadline)
        status.outputDroppedBytes =
            finalDropped
            ?? (outputBytes >= (outputLimit ?? .max) ? dropRecordPath.map(StateDirectory.droppedOutputBytes(at:)) : nil)
            ?? 0
        return status
    }

    /// The status right after exec: running, nothing used or written yet. Reads no file, so
    /// `start` does not pay for it.
    var initialStatus: JobStatus {
        JobStatus(
            id: id, owner: owner, command: command, arguments: arguments, executablePath: executablePath,
            state: .running, pid: pid, termination: nil, startedAt: startedAt, endedAt: nil, outputBytes: 0,
            limits: limits, usage: ResourceUsage(), user: user, workingDirectory: workingDirectory,
            environmentNames: environmentNames, hasStandardInput: hasStandardInput, name: name, labels: labels,
            stopSignal: stopSignal, timeout: timeout, deadline: deadline)
    }

    /// True until the job has ended and its final status is known.
    var isRunning: Bool { state.withLock { $0.phase.reportedState == .running } }

    /// True until the process has been reaped (its end may not be known yet: the cgroup's
    /// teardown comes after).
    var isProcessAlive: Bool { state.withLock { $0.phase.isAlive } }

    /// True once a stop has been asked for.
    var isStopping: Bool { state.withLock { $0.phase.stopRequested } }

    /// Asks the job to end: SIGTERM now, SIGKILL once `gracePeriod` has passed (`JobPhase`
    /// says which stop wins when several are asked for).
    func beginStop(gracePeriod: Duration, isTimeout: Bool = false) {
        transition { phase, process in
            phase.requestStop(
                gracePeriod: gracePeriod, now: .now, hasExited: process?.hasExited() ?? true, signal: stopSignal,
                isTimeout: isTimeout)
        }
    }

    /// Takes over a job a previous worker started; a stop it recorded goes on to its deadline.
    func adopt(recordedStopDeadline: Date?, timedOut: Bool = false) throws(JobPhase.InvalidTransition) {
        let deadline = recordedStopDeadline.map { ContinuousClock.now + .seconds($0.timeIntervalSinceNow) }
        try transition { phase, process throws(JobPhase.InvalidTransition) in
            try phase.adopt(
                recordedStopDeadline: deadline, now: .now, hasExited: process?.hasExited() ?? true, timedOut: timedOut)
        }
    }

    /// Sends `number` to the job, under the lock (the process is unreaped there); false if the
    /// process has ended.
    func send(signal number: Int32) -> Bool {
        state.withLock { state in
            guard state.phase.isAlive, let process = state.process else { return false }
            process.signal(number)
            return true
        }
    }

    /// SIGKILLs the job's process and everything in its cgroup, including processes that left
    /// the process group.
    func killEverything() {
        transition { phase, _ in phase.kill() }
    }

    /// Waits until the job has ended and returns its final status; returns early, with the
    /// current status, if the task is cancelled.
    func waitUntilEnded() async -> JobStatus {
        await ended.waitUntilFinished()
        return status
    }

    /// Returns once the job has ended and its end is on record.
    func waitUntilEndRecorded() async {
        await endRecorded.waitUntilFinished()
    }

    /// The process has exited (its pidfd is readable): reaps it and records how it ended. Runs
    /// on the event monitor's thread: the reap of an exited process does not wait.
    func reap() {
        let escalation = state.withLock { state -> Task<Void, Never>? in
            guard let process = state.process.take() else { return nil }
            let termination = process.reap(killedByWorker: state.phase.killedByWorker)
            // Cannot be refused: with its process there, the job was alive.
            let actions = (try? state.phase.processEnded(termination: termination, at: .now)) ?? []
            guard actions.contains(.cancelEscalation) else { return nil }
            defer { state.escalation = nil }
            return state.escalation
        }
        escalation?.cancel()
    }

    /// The cgroup is gone: fixes the final status.
    func complete(usage: ResourceUsage, oomKills: UInt64) throws(JobPhase.InvalidTransition) -> JobStatus {
        let dropped = dropRecordPath.map(StateDirectory.droppedOutputBytes(at:)) ?? 0
        try state.withLock { state throws(JobPhase.InvalidTransition) in
            _ = try state.phase.recordEnd(oomKills: oomKills)
            state.finalUsage = usage
            state.finalDroppedBytes = dropped
        }
        return status
    }

    /// Wakes everyone waiting for the end, and the output readers (nothing more is written).
    func publishEnd() {
        outputChanged.finish()
        ended.finish()
    }

    func markEndRecorded() {
        endRecorded.finish()
    }

    /// Applies a transition to the phase and carries out its actions: signals under the lock
    /// (the process is unreaped there), the rest after.
    private func transition<Failure: Error>(
        _ body: (inout JobPhase, (any JobProcess)?) throws(Failure) -> [JobPhase.Action]
    ) throws(Failure) {
        let (actions, previous) = try state.withLock { state throws(Failure) in
            let actions = try body(&state.phase, state.process)
            var previous: Task<Void, Never>?
            for action in actions {
                switch action {
                case .signal(let number):
                    state.process?.signal(number)
                case .killEverything:
                    state.process?.signal(SIGKILL)
                case .cancelEscalation, .scheduleEscalation:
                    previous = state.escalation
                    state.escalation = nil
                }
            }
            return (actions, previous)
        }
        previous?.cancel()
        for action in actions {
            switch action {
            case .killEverything:
                cgroup?.killAll()
            case .scheduleEscalation(let deadline):
                scheduleEscalation(at: deadline)
            case .signal, .cancelEscalation:
                break
            }
        }
    }

    private func scheduleEscalation(at deadline: ContinuousClock.Instant) {
        let escalation = Task { [self] in
            try? await Task.sleep(until: deadline)
            guard !Task.isCancelled else { return }
            // A stop with an earlier deadline, or the end, may have come meanwhile: then the
            // phase refuses, and there is nothing to do.
            try? transition { phase, _ throws(JobPhase.InvalidTransition) in try phase.escalate(now: .now) }
        }
        // Kept only while this is still the deadline in force.
        let superseded = state.withLock { state -> Bool in
            guard state.phase.stage == .stopping(deadline: deadline), state.escalation == nil else { return true }
            state.escalation = escalation
            return false
        }
        if superseded { escalation.cancel() }
    }
}
