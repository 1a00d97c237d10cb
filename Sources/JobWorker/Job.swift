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

    /// Signalled on every write to the output log; closed once the job has ended.
    let outputChanged: ChangeSignal
    /// Closed once the job has ended and its final status is known.
    private let ended = ChangeSignal()

    private struct State {
        /// The pidfd while the process is unreaped; nil afterwards.
        var pidfd: Int32?
        var stopRequested = false
        var termination: Termination?
        var endedAt: Date?
        /// Sends SIGKILL when a stop's grace period runs out.
        var escalation: Task<Void, Never>?
    }

    private let state: Mutex<State>

    init(
        id: JobID, owner: String, command: String, arguments: [String], executablePath: String,
        process: LaunchedProcess, startedAt: Date, outputPath: String, outputChanged: ChangeSignal
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
        self.state = Mutex(State(pidfd: process.pidfd))
    }

    var status: JobStatus {
        let (termination, endedAt, stopRequested) = state.withLock {
            ($0.termination, $0.endedAt, $0.stopRequested)
        }
        var info = stat()
        let outputBytes = stat(outputPath, &info) == 0 ? UInt64(info.st_size) : 0
        return JobStatus(
            id: id, owner: owner, command: command, arguments: arguments,
            executablePath: executablePath,
            state: Self.state(termination: termination, stopRequested: stopRequested), pid: pid,
            termination: termination, startedAt: startedAt, endedAt: endedAt, outputBytes: outputBytes)
    }

    var isRunning: Bool { state.withLock { $0.pidfd != nil } }

    /// Asks the job to end: SIGTERM to its process group now, SIGKILL once `gracePeriod` has
    /// passed. Idempotent: a second request neither resends SIGTERM nor restarts the grace period.
    /// A job that has already ended (even if not yet reaped) is left as it is.
    func beginStop(gracePeriod: Duration) {
        let started = state.withLock { state -> Bool in
            guard let pidfd = state.pidfd, !state.stopRequested, !Self.hasExited(pidfd: pidfd) else {
                return false
            }
            state.stopRequested = true
            kill(-pid, gracePeriod > .zero ? SIGTERM : SIGKILL)
            return true
        }
        guard started, gracePeriod > .zero else { return }
        let escalation = Task { [self] in
            try? await Task.sleep(for: gracePeriod)
            guard !Task.isCancelled else { return }
            signalProcessGroup(SIGKILL)
        }
        let alreadyEnded = state.withLock { state -> Bool in
            guard state.pidfd != nil else { return true }
            state.escalation = escalation
            return false
        }
        if alreadyEnded { escalation.cancel() }
    }

    /// Sends `signal` to the job's process group if its process is still unreaped.
    func signalProcessGroup(_ signal: Int32) {
        state.withLock { state in
            if state.pidfd != nil { kill(-pid, signal) }
        }
    }

    /// Waits until the job has ended and returns its final status; returns early, with the
    /// current status, if the task is cancelled.
    func waitUntilEnded() async -> JobStatus {
        await ended.waitUntilClosed()
        return status
    }

    /// Called by the event monitor once the process has exited: ends what is left of the process
    /// group, reaps the process, records how it ended and wakes everyone waiting on the job.
    func reap() {
        let escalation = state.withLock { state -> Task<Void, Never>? in
            guard let pidfd = state.pidfd else { return nil }
            // The leader is a zombie, so the group id is still this job's: nothing else is hit.
            kill(-pid, SIGKILL)
            var info = siginfo_t()
            while waitid(P_PIDFD, id_t(pidfd), &info, WEXITED) < 0 && errno == EINTR {}
            closeDescriptor(pidfd)
            state.pidfd = nil
            state.termination = Self.termination(of: info)
            state.endedAt = Date()
            defer { state.escalation = nil }
            return state.escalation
        }
        escalation?.cancel()
        outputChanged.close()
        ended.close()
    }

    private static func hasExited(pidfd: Int32) -> Bool {
        var info = siginfo_t()
        let result = waitid(P_PIDFD, id_t(pidfd), &info, WEXITED | WNOHANG | WNOWAIT)
        return result == 0 && info._sifields._sigchld.si_pid != 0
    }

    private static func termination(of info: siginfo_t) -> Termination {
        let status = info._sifields._sigchld.si_status
        switch Int(info.si_code) {
        case Int(CLD_EXITED): return .exited(code: status)
        default: return .signaled(status)
        }
    }

    private static func state(termination: Termination?, stopRequested: Bool) -> JobState {
        switch termination {
        case nil: .running
        case _ where stopRequested: .stopped
        case .signaled?: .killed
        case .exited?: .exited
        }
    }
}
