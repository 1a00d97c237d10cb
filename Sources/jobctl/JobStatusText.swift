import Foundation
import JobWorkerAPI

/// How a job's status reads for people: `jobctl status`, `stop` and `list`.
extension Jobworker_V1_JobStatus {
    /// The state as one lowercase word, as in `--json`.
    var stateWord: String { state.word }

    /// Whether the job ended on its own with an exit code (rather than by a signal).
    var endedWithExitCode: Bool { (state == .exited || state == .stopped) && signal == 0 }

    /// The state and how the job ended, e.g. "exited (code 3)", "killed (SIGKILL)".
    var outcome: String {
        switch state {
        case .running: "running"
        case .exited: "exited (code \(exitCode))"
        case .stopped: signal != 0 ? "stopped (\(signalName(signal)))" : "stopped (exited with code \(exitCode))"
        case .killed: "killed (\(signalName(signal)))"
        case .oomKilled: "out of memory (killed, \(signalName(signal == 0 ? SIGKILL : signal)))"
        case .lost: "lost (the worker can no longer tell how it ended)"
        case .timedOut:
            "timed out (" + (signal != 0 ? signalName(signal) : "exited with code \(exitCode)") + ")"
        default: "unknown"
        }
    }

    /// The command line as one would type it (arguments with spaces or quotes are quoted, and
    /// control characters escaped, as bash's `printf %q` does), so that a tenant's arguments
    /// cannot write escape sequences to the operator's terminal.
    var commandLine: String { ([command] + args).map(shellQuoted).joined(separator: " ") }

    /// What a shell would report as the job's status: its exit code, or 128 + the signal.
    var shellExitCode: Int32 {
        get throws {
            switch state {
            case .exited: return exitCode
            case .stopped, .killed, .oomKilled: return signal != 0 ? 128 + signal : exitCode
            case .timedOut: return 124  // as timeout(1)
            case .lost:
                throw CommandFailure(
                    "job \(EscapedText.escaped(id)) was lost: the worker can no longer tell how it ended")
            default: throw CommandFailure("job \(EscapedText.escaped(id)) has not ended (state \(stateWord))")
            }
        }
    }

    /// The multi-line description of `jobctl status`.
    var text: String {
        var lines: [(String, String)] = [
            ("ID", EscapedText.escaped(id)), ("Owner", EscapedText.escaped(owner)), ("Command", commandLine),
            ("State", outcome), ("PID", "\(pid)"),
            ("User", "uid \(uid), gid \(gid)"), ("Workdir", EscapedText.escaped(workingDir.isEmpty ? "/" : workingDir)),
        ]
        if !envNames.isEmpty { lines.append(("Env", envNames.map(EscapedText.escaped).joined(separator: ", "))) }
        if hasStdin_p { lines.append(("Stdin", "from the start request")) }
        if stopSignal != 0 && stopSignal != SIGTERM { lines.append(("Stop", "\(signalName(stopSignal)) first")) }
        if hasDeadline {
            lines.append(("Deadline", "\(timestamp(deadline.date)) (timeout \(seconds(Double(timeoutMs) / 1000)))"))
        }
        if !name.isEmpty { lines.insert(("Name", EscapedText.escaped(name)), at: 1) }
        if !labels.isEmpty {
            let text = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            lines.append(("Labels", EscapedText.escaped(text)))
        }
        if hasStartedAt {
            lines.append(("Started", "\(timestamp(startedAt.date)) (\(age(of: startedAt.date)) ago)"))
        }
        if hasEndedAt {
            let ran = endedAt.date.timeIntervalSince(startedAt.date)
            lines.append(("Ended", "\(timestamp(endedAt.date)) (ran \(seconds(ran)))"))
        }
        lines.append(("Limits", limitsText))
        lines.append(("Usage", usageText))
        lines.append(
            (
                "Output",
                "\(outputBytes) bytes" + (outputTruncated ? " (\(outputDroppedBytes) more dropped past the cap)" : "")
            ))
        return lines.map { "\(($0.0 + ":").padding(toLength: 9, withPad: " ", startingAt: 0)) \($0.1)" }
            .joined(separator: "\n")
    }

    private var limitsText: String {
        let limits = self.limits
        var parts = ["cpu \(cpuText(limits.cpuMillis))", "memory \(sizeText(limits.memoryBytes))"]
        if limits.ioReadBytesPerSecond != 0 { parts.append("io read \(sizeText(limits.ioReadBytesPerSecond))/s") }
        if limits.ioWriteBytesPerSecond != 0 { parts.append("io write \(sizeText(limits.ioWriteBytesPerSecond))/s") }
        if limits.ioReadOpsPerSecond != 0 { parts.append("io read \(limits.ioReadOpsPerSecond) ops/s") }
        if limits.ioWriteOpsPerSecond != 0 { parts.append("io write \(limits.ioWriteOpsPerSecond) ops/s") }
        parts.append("processes \(limits.maxProcesses == 0 ? "unlimited" : "\(limits.maxProcesses)")")
        return parts.joined(separator: ", ")
    }

    private var usageText: String {
        "cpu \(seconds(Double(usage.cpuUsec) / 1e6)), memory peak \(sizeText(usage.memoryPeakBytes)), "
            + "io read \(sizeText(usage.ioReadBytes)), io write \(sizeText(usage.ioWriteBytes))"
    }
}

extension Jobworker_V1_JobState {
    /// "running", "exited", "stopped", "killed", "oom_killed", "lost".
    var word: String {
        switch self {
        case .running: "running"
        case .exited: "exited"
        case .stopped: "stopped"
        case .killed: "killed"
        case .oomKilled: "oom_killed"
        case .lost: "lost"
        case .timedOut: "timed_out"
        default: "unspecified"
        }
    }
}

/// "SIGKILL" for 9, "signal 40" for one without a name.
func signalName(_ number: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
        SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
        SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
        SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
    ]
    return names[number] ?? "signal \(number)"
}

/// "1.5" CPUs for 1500 millicores, "500m" below one CPU.
func cpuText(_ millis: UInt32) -> String {
    if millis == 0 { return "unlimited" }
    if millis % 1000 == 0 { return "\(millis / 1000)" }
    return millis < 1000 ? "\(millis)m" : String(format: "%.2f", Double(millis) / 1000)
}

/// Binary units, as the limits are usually given: "256Mi", "1.5Gi", "512B".
func sizeText(_ bytes: UInt64) -> String {
    if bytes == 0 { return "0" }
    let units: [(String, UInt64)] = [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
    for (suffix, factor) in units where bytes >= factor {
        if bytes % factor == 0 { return "\(bytes / factor)\(suffix)" }
        return String(format: "%.1f", Double(bytes) / Double(factor)) + suffix
    }
    return "\(bytes)B"
}

/// "1.25s", "3m12s", "2h5m".
func seconds(_ interval: Double) -> String {
    if interval < 60 { return String(format: "%.2fs", interval) }
    let whole = Int(interval)
    if whole < 3600 { return "\(whole / 60)m\(whole % 60)s" }
    return "\(whole / 3600)h\((whole % 3600) / 60)m"
}

/// How long ago, short: "12s", "5m", "3h", "2d".
func age(of date: Date, now: Date = Date()) -> String {
    let elapsed = max(0, Int(now.timeIntervalSince(date)))
    if elapsed < 60 { return "\(elapsed)s" }
    if elapsed < 3600 { return "\(elapsed / 60)m" }
    if elapsed < 86_400 { return "\(elapsed / 3600)h" }
    return "\(elapsed / 86_400)d"
}

/// Local time, to the second.
func timestamp(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss zzz"
    return formatter.string(from: date)
}

/// A word as a shell would need it (`EscapedText.shellQuoted`): nothing of a tenant's
/// arguments reaches the terminal as a control.
func shellQuoted(_ word: String) -> String {
    EscapedText.shellQuoted(word)
}
