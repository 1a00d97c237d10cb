import Foundation

/// Why a job is in the state it is in.
public enum JobState: String, Sendable, Hashable, CaseIterable {
    /// The job's process has not ended yet.
    case running
    /// The job ended by itself; `JobStatus.termination` says with which exit code or signal.
    case exited
    /// The job ended after a stop request, however its process ended.
    case stopped
    /// The job was ended by a signal that did not come from a stop request.
    case killed
    /// The kernel's OOM killer ended the job: it reached its memory limit.
    case oomKilled
    /// The job's timeout passed and it was stopped (as a stop stops it); `termination` says how
    /// its process then ended.
    case timedOut
    /// The job was running when a previous worker went away, and this worker cannot tell how it
    /// ended: its process was gone, or was ended with its cgroup at startup.
    case lost
}

/// How a job's process ended.
public enum Termination: Sendable, Hashable {
    /// The process called exit with this status.
    case exited(code: Int32)
    /// The process was terminated by this signal.
    case signaled(Int32)

    /// From a wait status, as waitpid(2) reports it.
    init(waitStatus: Int32) {
        let signal = waitStatus & 0x7f
        self = signal == 0 ? .exited(code: (waitStatus >> 8) & 0xff) : .signaled(signal)
    }
}

/// A snapshot of one job, as `Worker.status(of:)` and `Worker.list()` report it.
public struct JobStatus: Sendable, Hashable {
    public var id: JobID
    /// The identity that started the job; authorization decisions are made on it.
    public var owner: String
    /// The command as requested (a bare name stays a bare name).
    public var command: String
    /// The arguments, verbatim, without argv[0].
    public var arguments: [String]
    /// The program that was executed: `command` resolved through PATH.
    public var executablePath: String
    public var state: JobState
    /// The host PID of the job's process. Only meaningful while the job runs.
    public var pid: Int32
    /// Set once the job has ended.
    public var termination: Termination?
    /// Exact to the nanosecond, across restarts too.
    public var startedAt: WallClockTime
    public var endedAt: WallClockTime?
    /// Bytes of output kept so far (in the log, readable from offset 0 to here).
    public var outputBytes: UInt64
    /// The limits applied to the job, defaults filled in; 0 means unlimited.
    public var limits: ResourceLimits
    /// Resources used so far, or in total once the job has ended.
    public var usage: ResourceUsage
    /// The uid and gid the job runs as (its own, from the worker's pool, by default).
    public var user: JobUser
    /// Output bytes dropped past the output cap (`WorkerConfiguration.maximumOutputBytes`): the
    /// log holds the first `outputBytes`, and nothing after them.
    public var outputDroppedBytes: UInt64 = 0
    /// The job's working directory, in its view of the filesystem.
    public var workingDirectory: String = "/"
    /// The names the start request added to the environment, sorted; never their values, which
    /// may be secrets.
    public var environmentNames: [String] = []
    /// Whether the job's stdin held bytes of the start request (else it was /dev/null).
    public var hasStandardInput = false
    /// The name and labels the start request gave (for people and for filtering).
    public var name = ""
    public var labels: [String: String] = [:]
    /// What a stop sends first (SIGTERM unless the start asked for another).
    public var stopSignal: Int32 = SIGTERM
    /// The job's time limit, and when it runs out (nil: none).
    public var timeout: Duration?
    public var deadline: WallClockTime?

    /// Whether output was dropped past the cap.
    public var outputTruncated: Bool { outputDroppedBytes > 0 }

    /// The exit status, when the process exited by itself.
    public var exitCode: Int32? {
        if case .exited(let code) = termination { return code }
        return nil
    }

    /// The terminating signal, when a signal ended the process.
    public var signal: Int32? {
        if case .signaled(let signal) = termination { return signal }
        return nil
    }
}
