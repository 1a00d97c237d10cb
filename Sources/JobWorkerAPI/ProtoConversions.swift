import Foundation
import GRPCCore
import JobWorker
import SwiftProtobuf

extension ResourceLimits {
    init(_ message: Jobworker_V1_ResourceLimits) {
        self.init(
            cpuMillis: message.cpuMillis, memoryBytes: message.memoryBytes,
            ioReadBytesPerSecond: message.ioReadBytesPerSecond, ioWriteBytesPerSecond: message.ioWriteBytesPerSecond,
            ioReadOpsPerSecond: message.ioReadOpsPerSecond, ioWriteOpsPerSecond: message.ioWriteOpsPerSecond,
            maxProcesses: message.maxProcesses)
    }
}

extension Jobworker_V1_ResourceLimits {
    /// The message for the library's limits, field for field: what a client sends to ask for
    /// exactly these limits.
    public init(_ limits: ResourceLimits) {
        self.init()
        cpuMillis = limits.cpuMillis
        memoryBytes = limits.memoryBytes
        ioReadBytesPerSecond = limits.ioReadBytesPerSecond
        ioWriteBytesPerSecond = limits.ioWriteBytesPerSecond
        ioReadOpsPerSecond = limits.ioReadOpsPerSecond
        ioWriteOpsPerSecond = limits.ioWriteOpsPerSecond
        maxProcesses = limits.maxProcesses
    }
}

extension Jobworker_V1_JobState {
    init(_ state: JobState) {
        switch state {
        case .running: self = .running
        case .exited: self = .exited
        case .stopped: self = .stopped
        case .killed: self = .killed
        case .oomKilled: self = .oomKilled
        case .lost: self = .lost
        case .timedOut: self = .timedOut
        }
    }
}

extension JobState {
    /// The library's state for a state of the API; nil for UNSPECIFIED and unknown values.
    init?(_ state: Jobworker_V1_JobState) {
        guard let match = JobState.allCases.first(where: { Jobworker_V1_JobState($0) == state }) else { return nil }
        self = match
    }
}

extension Jobworker_V1_JobStatus {
    init(_ status: JobStatus) {
        self.init()
        id = status.id.description
        owner = status.owner
        command = status.command
        args = status.arguments
        state = Jobworker_V1_JobState(status.state)
        pid = status.pid
        exitCode = status.exitCode ?? 0
        signal = status.signal ?? 0
        startedAt = Google_Protobuf_Timestamp(status.startedAt)
        if let endedAt = status.endedAt {
            self.endedAt = Google_Protobuf_Timestamp(endedAt)
        }
        limits = Jobworker_V1_ResourceLimits(status.limits)
        usage = .with {
            $0.cpuUsec = status.usage.cpuMicroseconds
            $0.memoryPeakBytes = status.usage.memoryPeakBytes
            $0.ioReadBytes = status.usage.ioReadBytes
            $0.ioWriteBytes = status.usage.ioWriteBytes
        }
        outputBytes = status.outputBytes
        uid = status.user.userID
        gid = status.user.groupID
        outputTruncated = status.outputTruncated
        outputDroppedBytes = status.outputDroppedBytes
        workingDir = status.workingDirectory
        envNames = status.environmentNames
        hasStdin_p = status.hasStandardInput
        name = status.name
        labels = status.labels
        stopSignal = status.stopSignal
        if let timeout = status.timeout {
            timeoutMs = UInt64(
                clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        }
        if let deadline = status.deadline { self.deadline = Google_Protobuf_Timestamp(deadline) }
    }
}

extension Google_Protobuf_Timestamp {
    /// Exact: a job's times are whole nanoseconds, as a `Timestamp` holds them.
    init(_ time: WallClockTime) {
        let (seconds, nanoseconds) = time.secondsAndNanoseconds
        self.init(seconds: seconds, nanos: nanoseconds)
    }
}

extension JobFilter {
    /// The library's filter for a request's; INVALID_ARGUMENT for a state that is not one.
    init(_ message: Jobworker_V1_JobFilter) throws(RPCError) {
        var states: Set<JobState> = []
        for state in message.states {
            guard let known = JobState(state) else {
                throw RPCError(code: .invalidArgument, message: "filter: \(state) is not a job state")
            }
            states.insert(known)
        }
        self.init(
            states: states, labels: message.labels, owner: message.owner.isEmpty ? nil : message.owner,
            name: message.name.isEmpty ? nil : message.name)
    }
}
