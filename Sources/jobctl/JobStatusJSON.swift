import Foundation
import JobWorkerAPI

/// The `--json` shape of a job's status (documented in README.md; scripts depend on it): field
/// names in snake_case as in the proto (converted by the encoder), the state as a lowercase word, times in RFC 3339, and
/// `exit_code` / `signal` present only when they say how the job ended.
struct JobStatusJSON: Encodable {
    struct Limits: Encodable {
        var cpuMillis: UInt32
        var memoryBytes: UInt64
        var ioReadBytesPerSecond: UInt64
        var ioWriteBytesPerSecond: UInt64
        var ioReadOpsPerSecond: UInt64
        var ioWriteOpsPerSecond: UInt64
        var maxProcesses: UInt32
    }

    struct Usage: Encodable {
        var cpuUsec: UInt64
        var memoryPeakBytes: UInt64
        var ioReadBytes: UInt64
        var ioWriteBytes: UInt64
    }

    var id: String
    var owner: String
    var command: String
    var args: [String]
    var state: String
    var pid: Int32
    var exitCode: Int32?
    var signal: Int32?
    var startedAt: String?
    var endedAt: String?
    var limits: Limits
    var usage: Usage
    var outputBytes: UInt64
    var uid: UInt32
    var gid: UInt32
    var outputTruncated: Bool
    var outputDroppedBytes: UInt64
    var workingDir: String
    var envNames: [String]
    var hasStdin: Bool
    var name: String
    var labels: [String: String]
    var timeoutMs: UInt64?
    var deadline: String?
    /// The context (or address) it came from, when several servers were asked.
    var server: String?

    init(_ status: Jobworker_V1_JobStatus) {
        id = status.id
        owner = status.owner
        command = status.command
        args = status.args
        state = status.state.word
        pid = status.pid
        exitCode = status.endedWithExitCode ? status.exitCode : nil
        signal = status.signal != 0 ? status.signal : nil
        startedAt = status.hasStartedAt ? rfc3339(status.startedAt.date) : nil
        endedAt = status.hasEndedAt ? rfc3339(status.endedAt.date) : nil
        workingDir = status.workingDir.isEmpty ? "/" : status.workingDir
        envNames = status.envNames
        hasStdin = status.hasStdin_p
        name = status.name
        labels = status.labels
        timeoutMs = status.timeoutMs == 0 ? nil : status.timeoutMs
        deadline = status.hasDeadline ? rfc3339(status.deadline.date) : nil
        let limits = status.limits
        self.limits = Limits(
            cpuMillis: limits.cpuMillis, memoryBytes: limits.memoryBytes,
            ioReadBytesPerSecond: limits.ioReadBytesPerSecond,
            ioWriteBytesPerSecond: limits.ioWriteBytesPerSecond,
            ioReadOpsPerSecond: limits.ioReadOpsPerSecond, ioWriteOpsPerSecond: limits.ioWriteOpsPerSecond,
            maxProcesses: limits.maxProcesses)
        usage = Usage(
            cpuUsec: status.usage.cpuUsec, memoryPeakBytes: status.usage.memoryPeakBytes,
            ioReadBytes: status.usage.ioReadBytes, ioWriteBytes: status.usage.ioWriteBytes)
        outputBytes = status.outputBytes
        uid = status.uid
        gid = status.gid
        outputTruncated = status.outputTruncated
        outputDroppedBytes = status.outputDroppedBytes
    }

    /// One status as a JSON object; with the server it came from, when several were asked.
    static func encode(_ status: Jobworker_V1_JobStatus, server: String? = nil) throws -> String {
        var object = JobStatusJSON(status)
        object.server = server
        return try encode(object)
    }

    /// Several statuses as a JSON array, each with its server when several were asked.
    static func encode(_ statuses: [Jobworker_V1_JobStatus], servers: [String?]? = nil) throws -> String {
        try encode(
            statuses.enumerated().map { index, status in
                var object = JobStatusJSON(status)
                object.server = servers?[index]
                return object
            })
    }

    /// One status as a JSON object on one line, for a stream of them (JSON lines).
    static func encodeLine(_ status: Jobworker_V1_JobStatus, server: String? = nil) throws -> String {
        var object = JobStatusJSON(status)
        object.server = server
        return try encode(object, pretty: false)
    }

    private static func encode(_ value: some Encodable, pretty: Bool = true) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

private func rfc3339(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}
