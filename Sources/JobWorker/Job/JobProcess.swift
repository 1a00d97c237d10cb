import CLinuxEvents

#if canImport(Glibc)
    import Glibc
#endif

/// The process that stands for a job, with how it is signalled, reaped and asked how the job
/// ended. One type per kind, so that no code asks "is there an init? was it adopted?".
///
/// Each owns its pidfd (closed when the process value goes away, after the reap). The caller
/// (`Job`) signals only while the process is unreaped: an unreaped process, even a zombie, keeps
/// its PID — and so the job's process group id — from being reused.
protocol JobProcess: Sendable {
    /// The host PID (the init's, for a job in its own namespaces).
    var pid: Int32 { get }
    /// The pidfd's number, for the event monitor's registration; owned by the process.
    var pidfdNumber: Int32 { get }
    /// Delivers a signal to the job (its process group, through its init when it has one).
    /// SIGSTOP, which an init cannot catch to forward, goes to an init as SIGTSTP, and the init
    /// stops the job.
    func signal(_ number: Int32)
    /// Whether the process has exited (its pidfd is readable), reaped or not.
    func hasExited() -> Bool
    /// Once the process has exited: reaps it and says how the job ended (nil: nobody can tell).
    /// `killedByWorker`: whether the worker sent SIGKILL while it was unreaped.
    func reap(killedByWorker: Bool) -> Termination?
}

extension JobProcess {
    func hasExited() -> Bool {
        var descriptor = pollfd(fd: pidfdNumber, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 1
    }
}

/// A job started as the worker's own child, in the worker's namespaces: the leader of its own
/// session and process group, which signals reach as a whole.
final class ChildProcess: JobProcess {
    let pid: Int32
    private let pidfd: FileDescriptor

    init(pid: Int32, pidfd: consuming FileDescriptor) {
        self.pid = pid
        self.pidfd = pidfd
    }

    var pidfdNumber: Int32 { pidfd.rawValue }

    func signal(_ number: Int32) {
        kill(-pid, number)
    }

    func reap(killedByWorker: Bool) -> Termination? {
        // The leader is a zombie, so the group id is still this job's: nothing else is hit.
        kill(-pid, SIGKILL)
        return waitForExit(pidfd: pidfd.rawValue)
    }
}

/// A job started by a jobworker-init (our child), PID 1 of the job's namespaces, which forwards
/// signals to the job and reports on its control channel how the job ended.
final class SupervisedProcess: JobProcess {
    private let parked: ParkedInit

    init(_ parked: ParkedInit) {
        self.parked = parked
    }

    var pid: Int32 { parked.pid }
    var pidfdNumber: Int32 { parked.pidfdNumber }

    func signal(_ number: Int32) {
        kill(-pid, number == SIGSTOP ? SIGTSTP : number)
    }

    func reap(killedByWorker: Bool) -> Termination? {
        kill(-pid, SIGKILL)
        let initEnd = waitForExit(pidfd: parked.pidfdNumber)
        // If the init reported nothing (it was killed with the whole namespace), its own end
        // is the job's.
        return parked.channel.reportedEnd() ?? initEnd
    }
}

/// A job a previous run of the worker started, still running when this one began: not our
/// child, so its wait status is not ours to collect. Its init tells how the job ended in the
/// exit record it writes.
final class AdoptedProcess: JobProcess {
    let pid: Int32
    private let pidfd: FileDescriptor
    private let exitRecordPath: String

    init(pid: Int32, pidfd: consuming FileDescriptor, exitRecordPath: String) {
        self.pid = pid
        self.pidfd = pidfd
        self.exitRecordPath = exitRecordPath
    }

    var pidfdNumber: Int32 { pidfd.rawValue }

    /// Through the pidfd, which cannot reach another process; the init forwards it to the job.
    func signal(_ number: Int32) {
        _ = linux_pidfd_send_signal(pidfd.rawValue, number == SIGSTOP ? SIGTSTP : number)
    }

    func reap(killedByWorker: Bool) -> Termination? {
        // Usually not our child (ECHILD); when a worker adopts from an earlier one in the same
        // process, it is, and must not stay a zombie.
        var info = siginfo_t()
        _ = waitid(P_PIDFD, id_t(pidfd.rawValue), &info, WEXITED | WNOHANG)
        // Killed by us before it could write its record, the job died of our SIGKILL.
        return InitChannel.readExitRecord(at: exitRecordPath) ?? (killedByWorker ? .signaled(SIGKILL) : nil)
    }
}

/// Reaps an exited child through its pidfd and returns how it ended.
func waitForExit(pidfd: Int32) -> Termination {
    var info = siginfo_t()
    while waitid(P_PIDFD, id_t(pidfd), &info, WEXITED) < 0 && errno == EINTR {}
    let status = info._sifields._sigchld.si_status
    return Int(info.si_code) == Int(CLD_EXITED) ? .exited(code: status) : .signaled(status)
}
