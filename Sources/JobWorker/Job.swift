import CJobLauncher
import CLinuxEvents
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One job: what was asked for, the process that runs it, and its lifecycle.
///
/// Every transition happens under one lock: `beginStop` and `reap` cannot interleave, so a
/// signal is only ever sent while the job's process is unreaped. An unreaped process (even a
/// zombie) keeps its PID, and thus the job's process group id, from being reused.
final class Job: Sendable {
    let id: JobID
    let owner: String
    let command: String
    let arguments: [String]
    let executablePath: String
    let pid: Int32
    let startedAt: Date
    let outputPath: String
    let limits: ResourceLimits
    /// The job's cgroup, unless resource control is disabled.
    let cgroup: (any JobCgroup)?

    /// Signalled on every write to the output log; closed once the job has ended.
    let outputChanged: ChangeSignal
    /// Closed once the job has ended and its final status is known.
    private let ended = ChangeSignal()
    /// Closed once `onEndPublished` has run (the end is on record).
    private let endRecorded = ChangeSignal()
    /// Called with the final status before waiters learn of the end (a running slot frees up
    /// first), and after they did (bookkeeping they need not wait for).
    private let onEnded: @Sendable (JobStatus) -> Void
    private let onEndPublished: @Sendable (JobStatus) -> Void
    /// For a job adopted from a previous run of the worker (not our child: its exit status is
    /// not ours to wait for): how it ended, from the exit record its init left, if any.
    private let adoptedTermination: (@Sendable () -> Termination?)?

    private struct State {
        /// The pidfd while the process is unreaped; nil afterwards.
        var pidfd: Int32?
        /// With an init: its control socket, where it reports the job's wait status. Closed at reap.
        var control: Int32?
        var stopRequested = false
        /// When the pending stop sends SIGKILL.
        var stopDeadline: ContinuousClock.Instant?
        /// Whether we sent SIGKILL to the process while it was unreaped.
        var killed = false
        var termination: Termination?
        var endedAt: Date?
        /// Sends SIGKILL when a stop's grace period runs out.
        var escalation: Task<Void, Never>?
        /// Set once the process is reaped and its cgroup torn down: the status is final.
        var final: FinalAccount?
    }

    /// What is only known once the job's cgroup is empty.
    private struct FinalAccount {
        var usage: ResourceUsage
        var oomKilled: Bool
    }

    private let state: Mutex<State>

    init(
        id: JobID, owner: String, command: String, arguments: [String], executablePath: String,
        process: LaunchedProcess, startedAt: Date, outputPath: String, outputChanged: ChangeSignal,
        limits: ResourceLimits, cgroup: (any JobCgroup)?,
        adoptedTermination: (@Sendable () -> Termination?)? = nil,
        onEnded: @escaping @Sendable (JobStatus) -> Void,
        onEndPublished: @escaping @Sendable (JobStatus) -> Void
    ) {
        self.id = id
        self.owner = owner
        self.command = command
        self.arguments = arguments
        self.executablePath = executablePath
        self.pid = process.pid
        self.startedAt = startedAt
        self.outputPath = outputPath
        self.outputChanged = outputChanged
        self.limits = limits
        self.cgroup = cgroup
        self.onEnded = onEnded
        self.onEndPublished = onEndPublished
        self.adoptedTermination = adoptedTermination
        self.state = Mutex(State(pidfd: process.pidfd, control: process.control))
    }

    var status: JobStatus {
        let (termination, endedAt, stopRequested, final) = state.withLock {
            ($0.termination, $0.endedAt, $0.stopRequested, $0.final)
        }
        var info = stat()
        let outputBytes = stat(outputPath, &info) == 0 ? UInt64(info.st_size) : 0
        let state: JobState
        switch (final, termination) {
        case (nil, _): state = .running
        case (_, nil): state = .lost  // an adopted job that left no exit record
        case _ where stopRequested: state = .stopped
        case (let final?, _) where final.oomKilled: state = .oomKilled
        case (_, .signaled?): state = .killed
        case (_, .exited?): state = .exited
        }
        return JobStatus(
            id: id, owner: owner, command: command, arguments: arguments, executablePath: executablePath,
            state: state, pid: pid, termination: final == nil ? nil : termination, startedAt: startedAt,
            endedAt: final == nil ? nil : endedAt, outputBytes: outputBytes, limits: limits,
            usage: final?.usage ?? cgroup?.usage() ?? ResourceUsage())
    }

    /// The status right after exec: running, nothing used or written yet. Reads no file, so
    /// `start` does not pay for it.
    var initialStatus: JobStatus {
        JobStatus(
            id: id, owner: owner, command: command, arguments: arguments, executablePath: executablePath,
            state: .running, pid: pid, termination: nil, startedAt: startedAt, endedAt: nil, outputBytes: 0,
            limits: limits, usage: ResourceUsage())
    }

    /// True until the job has ended and its final status is known.
    var isRunning: Bool { state.withLock { $0.final == nil } }

    /// True once a stop has been asked for.
    var isStopping: Bool { state.withLock { $0.stopRequested } }

    /// Asks the job to end: SIGTERM to its process group now, SIGKILL once `gracePeriod` has
    /// passed. SIGTERM goes once: a later request sends nothing new, but a shorter deadline than
    /// the one pending wins (as `docker kill` after a `docker stop -t 3600` does), so that no
    /// long grace period, asked for by anyone, can keep an operator's stop or the worker's
    /// shutdown waiting. A job that has already ended (even if not yet reaped) is left as it is.
    ///
    /// `resuming` a stop that a previous worker began sends no SIGTERM: the job has had it.
    func beginStop(gracePeriod: Duration, resuming: Bool = false) {
        let deadline = ContinuousClock.now + gracePeriod
        let replaced = state.withLock { state -> Task<Void, Never>?? in
            guard let pidfd = state.pidfd, !Self.hasExited(pidfd: pidfd) else {
                // A resumed stop began before the job ended, however soon after it the job did.
                if resuming { state.stopRequested = true }
                return .none
            }
            if state.stopRequested {
                guard let pending = state.stopDeadline, deadline < pending else { return .none }
            } else {
                state.stopRequested = true
                if !resuming { signal(gracePeriod > .zero ? SIGTERM : SIGKILL, pidfd: pidfd) }
            }
            state.stopDeadline = deadline
            defer { state.escalation = nil }
            return .some(state.escalation)
        }
        guard case .some(let previous) = replaced else { return }
        previous?.cancel()
        guard gracePeriod > .zero else {
            killEverything()
            return
        }
        let escalation = Task { [self] in
            try? await Task.sleep(until: deadline)
            guard !Task.isCancelled else { return }
            killEverything()
        }
        // Kept only while this is still the deadline in force and the job has not ended.
        let superseded = state.withLock { state -> Bool in
            guard state.pidfd != nil, state.stopDeadline == deadline else { return true }
            state.escalation = escalation
            return false
        }
        if superseded { escalation.cancel() }
    }

    /// SIGKILLs the job's process group (while its leader is unreaped) and everything in its
    /// cgroup, including processes that left the process group.
    func killEverything() {
        state.withLock { state in
            guard let pidfd = state.pidfd else { return }
            signal(SIGKILL, pidfd: pidfd)
            state.killed = true
        }
        cgroup?.killAll()
    }

    /// Waits until the job has ended and returns its final status; returns early, with the
    /// current status, if the task is cancelled.
    func waitUntilEnded() async -> JobStatus {
        await ended.waitUntilClosed()
        return status
    }

    /// Returns once the job has ended and `onEndPublished` has run.
    func waitUntilEndRecorded() async {
        await endRecorded.waitUntilClosed()
    }

    /// Called by the event monitor once the process has exited: ends what is left of the process
    /// group, reaps the process and records how it ended; then, off the monitor thread, tears
    /// down the cgroup (everything in it dies), takes the final usage, and wakes everyone waiting.
    func reap(monitor: EventMonitor) {
        let escalation = state.withLock { state -> Task<Void, Never>? in
            guard let pidfd = state.pidfd else { return nil }
            var info = siginfo_t()
            if adoptedTermination == nil {
                // The leader is a zombie, so the group id is still this job's: nothing else is hit.
                kill(-pid, SIGKILL)
                while waitid(P_PIDFD, id_t(pidfd), &info, WEXITED) < 0 && errno == EINTR {}
            } else {
                // Usually not our child (ECHILD); when a worker adopts from an earlier one in the
                // same process, it is, and must not stay a zombie.
                _ = waitid(P_PIDFD, id_t(pidfd), &info, WEXITED | WNOHANG)
            }
            closeDescriptor(pidfd)
            state.pidfd = nil
            // An init reports how the job ended; if it left nothing (it was killed with the
            // whole namespace), its own end is the job's.
            // An adopted job's init (not our child) tells how the job ended only by its exit
            // record; if we killed it first, it had no time to write one, and the job died of
            // our SIGKILL.
            state.termination =
                if let adoptedTermination {
                    adoptedTermination() ?? (state.killed ? .signaled(SIGKILL) : nil)
                } else {
                    state.control.flatMap(Self.reportedTermination) ?? Self.termination(of: info)
                }
            state.control.map(closeDescriptor)
            state.control = nil
            state.endedAt = Date()
            defer { state.escalation = nil }
            return state.escalation
        }
        escalation?.cancel()
        guard let cgroup else {
            finish(FinalAccount(usage: ResourceUsage(), oomKilled: false))
            return
        }
        Task {
            let (usage, oomKills) = await cgroup.tearDown(monitor: monitor)
            let killed = state.withLock { $0.termination == .signaled(SIGKILL) }
            finish(FinalAccount(usage: usage, oomKilled: killed && oomKills > 0))
        }
    }

    private func finish(_ account: FinalAccount) {
        state.withLock { $0.final = account }
        let final = status
        onEnded(final)
        outputChanged.close()
        ended.close()
        onEndPublished(final)
        endRecorded.close()
    }

    /// SIGTERM or SIGKILL for the job: to its process group while its leader is our unreaped
    /// child (the group id cannot have been reused); to the adopted process through its pidfd,
    /// which cannot reach another process (an adopted init forwards it to the job).
    private func signal(_ signalNumber: Int32, pidfd: Int32) {
        if adoptedTermination == nil {
            kill(-pid, signalNumber)
        } else {
            _ = linux_pidfd_send_signal(pidfd, signalNumber)
        }
    }

    /// Whether the process has exited (a pidfd becomes readable then; this works for an adopted
    /// process too, which is not our child).
    private static func hasExited(pidfd: Int32) -> Bool {
        var descriptor = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 1
    }

    /// The wait status an init reported on its control socket before exiting, if it did.
    private static func reportedTermination(control: Int32) -> Termination? {
        var reply = jw_init_reply()
        guard jw_receive_reply(control, Int32(MSG_DONTWAIT), &reply) == 0,
            reply.kind == Int32(JW_REPLY_ENDED.rawValue)
        else { return nil }
        return Termination(waitStatus: reply.status)
    }

    private static func termination(of info: siginfo_t) -> Termination {
        let status = info._sifields._sigchld.si_status
        switch Int(info.si_code) {
        case Int(CLD_EXITED): return .exited(code: status)
        default: return .signaled(status)
        }
    }

}
