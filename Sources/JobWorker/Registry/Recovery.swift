import CLinuxEvents
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What a starting worker makes of the jobs a previous run recorded.
///
/// A job recorded as running is adopted if its process — its init, under isolation — is still
/// there: the same pid with the same start time (pids are reused, the pair is not), held from
/// then on by a pidfd. Otherwise its init may have left an exit record with the job's wait
/// status before it exited; failing that, nobody can tell how it ended, and it is lost.
struct Recovery {
    /// Running jobs whose process is still there, held by its pidfd.
    var adoptable: [(record: JobStore.Record, process: AdoptedProcess)] = []
    /// Every other job, its state final (ended as its exit record says, or lost).
    var history: [JobStatus] = []
    /// Every recorded job, oldest first.
    var order: [JobID] = []
    var lastSequence: Int64 = 0
    /// The client tokens of the recorded jobs, with their specs' fingerprints.
    var clientTokens: [(id: JobID, token: JobStore.RecordedClientToken)] = []

    static func plan(store: JobStore, stateDirectory: StateDirectory, logger: Logger) throws(JobWorkerError)
        -> Recovery
    {
        let (records, lastSequence) = try store.loadAll()
        var recovery = Recovery(lastSequence: lastSequence)
        var ended = 0
        var lost = 0
        for record in records {
            recovery.order.append(record.status.id)
            if let token = record.clientToken { recovery.clientTokens.append((record.status.id, token)) }
            guard record.status.state == .running else {
                recovery.history.append(record.status)
                continue
            }
            if let process = open(record, exitRecordPath: stateDirectory.exitRecordPath(record.status.id)) {
                recovery.adoptable.append((record, process))
                continue
            }
            var status = record.status
            var info = stat()
            if stat(stateDirectory.outputPath(status.id), &info) == 0 { status.outputBytes = UInt64(info.st_size) }
            let termination = stateDirectory.readExitRecord(for: status.id)
            status.outputDroppedBytes = stateDirectory.droppedOutputBytes(of: status.id)
            // The same rule as a live job's end; its cgroup (and OOM count) went with the host's
            // or the previous worker's end.
            status.state = JobPhase.finalState(
                termination: termination, stopRequested: record.stopDeadline != nil, timedOut: record.timedOut,
                oomKills: 0)
            status.termination = termination
            if termination != nil {
                var recordInfo = stat()
                if stat(stateDirectory.exitRecordPath(status.id), &recordInfo) == 0 {
                    status.endedAt = WallClockTime(
                        nanosecondsSince1970: Int64(recordInfo.st_mtim.tv_sec) * 1_000_000_000
                            + Int64(recordInfo.st_mtim.tv_nsec))
                }
                ended += 1
            } else {
                lost += 1
            }
            try store.update(status)
            stateDirectory.removeExitRecord(for: status.id)
            recovery.history.append(status)
        }
        if !records.isEmpty {
            logger.info(
                "job records: \(records.count) from previous runs; \(recovery.adoptable.count) still running, adopted; \(ended) ended meanwhile; \(lost) lost"
            )
        }
        return recovery
    }

    /// The record's process, held by a pidfd, if it is still the same process.
    private static func open(_ record: JobStore.Record, exitRecordPath: String) -> AdoptedProcess? {
        let pid = record.status.pid
        guard let recorded = record.processStartTime, pid > 0, processStartTime(of: pid) == recorded else {
            return nil
        }
        let pidfd = linux_pidfd_open(pid)
        guard pidfd >= 0 else { return nil }
        let process = AdoptedProcess(
            pid: pid, pidfd: FileDescriptor(adopting: pidfd), exitRecordPath: exitRecordPath)
        // Checked again with the pidfd held: the pid cannot be reused from here on.
        return processStartTime(of: pid) == recorded ? process : nil
    }
}

/// When a process started, in clock ticks after boot (`/proc/PID/stat`, field 22); nil if
/// there is no such process.
func processStartTime(of pid: Int32) -> UInt64? {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
    let text = String(decoding: data, as: UTF8.self)
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    guard let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // fields[0] is field 3 (state): field 22 is fields[19].
    return fields.count > 19 ? UInt64(fields[19]) : nil
}
