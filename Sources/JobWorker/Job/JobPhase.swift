import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where a job is in its life, as a value: every change is a transition that returns the
/// actions it calls for, and refuses (with a `JobPhase.InvalidTransition`) what cannot happen in
/// the current phase. Pure: no clock, no process, no lock; time comes in as arguments, so each
/// transition is unit-tested on its own. `Job` holds one under its lock and carries out the
/// actions; `Recovery` derives the final state of a job a previous run left with the same
/// `finalState` function.
///
/// ```
/// running ──requestStop──▶ stopping ──escalate──▶ stopping (killed)
///    │                        │
///    └────processEnded────────┴──▶ exited ──recordEnd──▶ ended(final state)
/// ```
struct JobPhase: Sendable, Equatable {
    enum Stage: Sendable, Equatable {
        /// The process runs; nobody asked it to stop.
        case running
        /// A stop was asked for (SIGTERM sent, or sent by a previous worker); SIGKILL is due at
        /// `deadline`.
        case stopping(deadline: ContinuousClock.Instant)
        /// The process has been reaped; what is left (the cgroup) is being torn down.
        case exited
        /// Everything is known and recorded: the job's final state.
        case ended(JobState)
    }

    /// What the caller must do after a transition, in order.
    enum Action: Sendable, Equatable {
        /// Send this signal to the job (its process group, or its init).
        case signal(Int32)
        /// SIGKILL the job's process and everything in its cgroup.
        case killEverything
        /// Run `escalate` at this instant, replacing any escalation already scheduled.
        case scheduleEscalation(at: ContinuousClock.Instant)
        /// Drop the scheduled escalation: it is no longer needed.
        case cancelEscalation
    }

    /// A transition that the current phase does not allow.
    struct InvalidTransition: Error, Sendable, Equatable, CustomStringConvertible {
        let transition: String
        let stage: Stage
        var description: String { "\(transition) is not possible when the job is \(stage)" }
    }

    private(set) var stage: Stage = .running
    /// Whether anyone asked for a stop: a stop request wins over how the process then ended.
    private(set) var stopRequested = false
    /// Whether that stop was the job's timeout.
    private(set) var timedOut = false
    /// Whether the worker sent SIGKILL while the process was unreaped: an adopted job that left
    /// no exit record died of it.
    private(set) var killedByWorker = false
    private(set) var termination: Termination?
    private(set) var endedAt: WallClockTime?
    /// Whether `adopt` or any other transition has happened yet.
    private var isFresh = true

    /// Whether the process may still receive signals (not yet reaped).
    var isAlive: Bool {
        switch stage {
        case .running, .stopping: true
        case .exited, .ended: false
        }
    }

    /// The state a status reports: running until the end is known.
    var reportedState: JobState {
        if case .ended(let state) = stage { return state }
        return .running
    }

    /// A stop: SIGTERM now (SIGKILL for a zero grace period) and SIGKILL at `now + gracePeriod`.
    /// SIGTERM goes once; of several stops, the earliest deadline holds. A process that has
    /// already exited (`hasExited`, even if unreaped) or a job that has ended is left as it is.
    mutating func requestStop(
        gracePeriod: Duration, now: ContinuousClock.Instant, hasExited: Bool, signal: Int32 = SIGTERM,
        isTimeout: Bool = false
    ) -> [Action] {
        isFresh = false
        if case .running = stage, !hasExited, isTimeout { timedOut = true }
        let deadline = now + gracePeriod
        switch stage {
        case .exited, .ended:
            return []
        case .running:
            guard !hasExited else { return [] }
            stopRequested = true
            stage = .stopping(deadline: deadline)
            guard gracePeriod > .zero else {
                killedByWorker = true
                return [.killEverything]
            }
            return [.signal(signal), .scheduleEscalation(at: deadline)]
        case .stopping(let pending):
            guard !hasExited, deadline < pending else { return [] }
            stage = .stopping(deadline: deadline)
            guard gracePeriod > .zero else {
                killedByWorker = true
                return [.cancelEscalation, .killEverything]
            }
            return [.scheduleEscalation(at: deadline)]
        }
    }

    /// A job a previous worker started, taken over by this one. A stop that worker recorded
    /// resumes with its deadline, without a second SIGTERM; a stop recorded before the process
    /// ended counts as a stop however soon after it the process ended.
    mutating func adopt(
        recordedStopDeadline: ContinuousClock.Instant?, now: ContinuousClock.Instant, hasExited: Bool,
        timedOut: Bool = false
    )
        throws(InvalidTransition) -> [Action]
    {
        guard isFresh, stage == .running else { throw InvalidTransition(transition: "adopt", stage: stage) }
        isFresh = false
        guard let deadline = recordedStopDeadline else { return [] }
        stopRequested = true
        self.timedOut = timedOut
        guard !hasExited else { return [] }
        stage = .stopping(deadline: deadline)
        guard deadline > now else {
            killedByWorker = true
            return [.killEverything]
        }
        return [.scheduleEscalation(at: deadline)]
    }

    /// The stop's grace period ran out: SIGKILL to everything.
    mutating func escalate(now: ContinuousClock.Instant) throws(InvalidTransition) -> [Action] {
        guard case .stopping(let deadline) = stage, now >= deadline else {
            throw InvalidTransition(transition: "escalate", stage: stage)
        }
        isFresh = false
        killedByWorker = true
        return [.killEverything]
    }

    /// A SIGKILL outside a stop (the start failed after exec, the job cannot be watched, the
    /// worker gives up on it). Nothing to do once the process is gone.
    mutating func kill() -> [Action] {
        isFresh = false
        guard isAlive else { return [] }
        killedByWorker = true
        return [.killEverything]
    }

    /// The process has been reaped; `termination` is how it ended (nil: nobody can tell).
    mutating func processEnded(termination: Termination?, at date: WallClockTime) throws(InvalidTransition) -> [Action]
    {
        guard isAlive else { throw InvalidTransition(transition: "processEnded", stage: stage) }
        isFresh = false
        let wasStopping = if case .stopping = stage { true } else { false }
        self.termination = termination
        endedAt = date
        stage = .exited
        return wasStopping ? [.cancelEscalation] : []
    }

    /// The cgroup is gone and its count of OOM kills known: the job has its final state.
    mutating func recordEnd(oomKills: UInt64) throws(InvalidTransition) -> JobState {
        guard stage == .exited else { throw InvalidTransition(transition: "recordEnd", stage: stage) }
        let state = Self.finalState(
            termination: termination, stopRequested: stopRequested, timedOut: timedOut, oomKills: oomKills)
        stage = .ended(state)
        return state
    }

    /// How a job that ended is reported; one rule for live jobs and for those a restarted worker
    /// finds ended. A stop request wins: however the process then ended, the job was stopped.
    /// Otherwise a SIGKILL with an OOM kill in the job's cgroup is the OOM killer's; any other
    /// signal is a kill. A job whose end nobody can tell is lost.
    static func finalState(termination: Termination?, stopRequested: Bool, timedOut: Bool = false, oomKills: UInt64)
        -> JobState
    {
        switch termination {
        case nil: .lost
        case _ where stopRequested && timedOut: .timedOut
        case _ where stopRequested: .stopped
        case .signaled(SIGKILL) where oomKills > 0: .oomKilled
        case .signaled: .killed
        case .exited: .exited
        }
    }
}
