import Logging

/// What happens when a job's process exits, in order: the reap (on the event monitor's thread,
/// where it cannot wait), then — on a task, never the monitor's thread — the cgroup's teardown
/// and final usage, the running slot freed, the waiters woken, the end recorded in the store, the
/// job moved to the history, and retention applied.
///
/// The slot is freed before waiters learn of the end, so a caller whose `stop` returned can
/// start another job at once; the end is recorded right after, and `Job.waitUntilEndRecorded`
/// tells when (a shutdown waits for every record).
struct JobEnd: Sendable {
    let table: JobTable
    let store: JobStore
    let stateDirectory: StateDirectory
    let cgroups: JobCgroups?
    let retention: Retention
    let monitor: EventMonitor
    let logger: Logger

    /// The event monitor's handler for the job's exit (or, for a job that cannot be watched,
    /// called once it has been killed).
    func processExited(_ job: Job, writeWatch: EventMonitor.WriteWatch?) {
        job.reap()
        writeWatch.map(monitor.removeWriteWatch)
        Task { await finish(job) }
    }

    private func finish(_ job: Job) async {
        let (usage, oomKills) =
            if let cgroup = job.cgroup, let cgroups {
                await cgroups.tearDown(cgroup)
            } else {
                (ResourceUsage(), UInt64(0))
            }
        let final: JobStatus
        do {
            final = try job.complete(usage: usage, oomKills: oomKills)
        } catch {
            logger.error("job \(job.id): \(error)")
            return
        }
        table.freeSlot(of: job.id)
        job.publishEnd()
        do {
            try store.update(final)
            stateDirectory.removeExitRecord(for: final.id)
        } catch {
            logger.error("job \(final.id): \(error.logDescription)")
        }
        table.recordFinished(final)
        retention.apply()
        job.markEndRecorded()
    }
}
