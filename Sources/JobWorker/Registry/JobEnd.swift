import Dispatch
import Logging

/// What happens when a job's process exits, in order: the reap (on the event monitor's thread,
/// where it cannot wait); the cgroup's teardown and final usage (on a task: it waits for the
/// cgroup to empty); the running slot freed and the waiters woken; then, on a serial queue of
/// its own, the end recorded in the store, the job moved to the history, and retention applied.
///
/// Neither the monitor's thread nor Swift's cooperative pool ever waits for SQLite or the disk:
/// a job without a cgroup has nothing to tear down, so its slot and waiters are dealt with right
/// where it was reaped, and its record goes to the same queue as every other job's.
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
    /// Where the jobs' /var/tmp directories are (with isolation).
    let scratch: ScratchDirectories?
    /// Where a job's uid goes back once its processes are gone.
    let users: JobUserPool?
    let logger: Logger
    /// Where the teardown runs (`WorkerConfiguration.backgroundExecutor`).
    let executor: (any TaskExecutor)?
    /// Where ends are written to the store, one at a time, in the order the jobs ended.
    private let records = DispatchQueue(label: "jobworker.job-records")

    init(
        table: JobTable, store: JobStore, stateDirectory: StateDirectory, cgroups: JobCgroups?, retention: Retention,
        monitor: EventMonitor, scratch: ScratchDirectories?, users: JobUserPool?, logger: Logger,
        executor: (any TaskExecutor)?
    ) {
        self.executor = executor
        self.users = users
        (self.table, self.store, self.stateDirectory) = (table, store, stateDirectory)
        (self.cgroups, self.retention, self.monitor, self.logger) = (cgroups, retention, monitor, logger)
        self.scratch = scratch
    }

    /// The event monitor's handler for the job's exit (or, for a job that cannot be watched,
    /// called once it has been killed).
    func processExited(_ job: Job, writeWatch: EventMonitor.WriteWatch?) {
        job.reap()
        writeWatch.map(monitor.removeWriteWatch)
        if let cgroup = job.cgroup, let cgroups {
            Task(executorPreference: executor) {
                let (usage, oomKills) = await cgroups.tearDown(cgroup)
                finish(job, usage: usage, oomKills: oomKills)
            }
        } else {
            finish(job, usage: ResourceUsage(), oomKills: 0)
        }
    }

    /// Fixes the final status, frees the slot and wakes the waiters (none of which blocks), then
    /// hands the record to the queue.
    private func finish(_ job: Job, usage: ResourceUsage, oomKills: UInt64) {
        let final: JobStatus
        do {
            final = try job.complete(usage: usage, oomKills: oomKills)
        } catch {
            // The end was already fixed (a second call): what follows is idempotent and safe.
            logger.error("job \(job.id): \(error)", metadata: ["job": "\(job.id)"])
            table.freeSlot(of: job)
            job.publishEnd()
            job.markEndRecorded()
            return
        }
        table.freeSlot(of: job)
        job.publishEnd()
        records.async { [self] in
            // The job's processes are gone (its init's end took the namespace with it, or the
            // cgroup's teardown killed what was left): its files and its uid are free.
            scratch?.remove(final.id)
            users?.giveBack(job.user)
            do throws(JobWorkerError) {
                try store.update(final)
                stateDirectory.removeExitRecord(for: final.id)
            } catch {
                logger.error("job \(final.id): \(error.logDescription)", metadata: ["job": "\(final.id)"])
            }
            table.recordFinished(final, allocatedBytes: stateDirectory.allocatedOutputBytes(of: final.id))
            retention.apply()
            job.markEndRecorded()
        }
    }
}
