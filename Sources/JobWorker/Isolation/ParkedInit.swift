import CLinuxEvents

#if canImport(Glibc)
    import Glibc
#endif

/// A jobworker-init started ahead of time for a job that does not exist yet: it already has the
/// job's id, sits in the job's cgroup (with the worker's default limits), is PID 1 of fresh PID,
/// mount, network, UTS and IPC namespaces with the job's host name, and waits on its channel.
///
/// Owns the init's pidfd and channel: both close when the last reference goes (the pool's while
/// parked, then the job's `SupervisedProcess` until the reap).
final class ParkedInit: Sendable {
    /// The id the job will have.
    let id: JobID
    let pid: Int32
    private let pidfd: FileDescriptor
    let channel: InitChannel
    /// The job's cgroup, unless resource control is disabled.
    let cgroup: (any JobCgroup)?
    /// The limits the cgroup already has: the worker's defaults. A job with these limits (any
    /// start that asks for none) has nothing left to write.
    let limits: ResourceLimits
    /// The init's start time (/proc/PID/stat), which the job's record keeps so that a later
    /// worker never mistakes another process for it.
    let startTime: UInt64?

    init(
        id: JobID, pid: Int32, pidfd: consuming FileDescriptor, channel: InitChannel, cgroup: (any JobCgroup)?,
        limits: ResourceLimits
    ) {
        (self.id, self.pid, self.channel) = (id, pid, channel)
        startTime = processStartTime(of: pid)
        self.pidfd = pidfd
        (self.cgroup, self.limits) = (cgroup, limits)
    }

    var pidfdNumber: Int32 { pidfd.rawValue }

    /// Kills and reaps an init that will not get a job (or failed to start one). Its cgroup,
    /// emptied by its end, is the caller's to remove.
    ///
    /// Through the pidfd, so that a second call (the rollback of a start whose job already took
    /// this init) reaches nothing: a reaped process's pidfd signals no one, and its wait returns.
    func end() {
        _ = linux_pidfd_send_signal(pidfd.rawValue, SIGKILL)
        _ = waitForExit(pidfd: pidfd.rawValue)
    }
}
