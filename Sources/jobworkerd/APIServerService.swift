import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Logging
import ServiceLifecycle
import UnixSignals

/// Listens, makes the worker (which adopts the jobs of a previous run), serves until a graceful
/// shutdown, then leaves the running jobs to the next server (or stops them), in the order an
/// upgrade needs:
///
/// 0. Listening, NOT_SERVING in health, the job API UNAVAILABLE ("starting") while the worker is
///    made; then SERVING, and `READY=1` to systemd.
/// 1. SIGTERM: NOT_SERVING in health and `STOPPING=1` to systemd; output streams, waits and
///    watches end with UNAVAILABLE (clients resume, output by offset); unary calls are still
///    answered for `shutdownDelay`, time for load balancers to see NOT_SERVING.
/// 2. The listener closes (GOAWAY); calls in flight get up to `shutdownGrace` to finish, then
///    their connections are closed.
/// 3. The worker shuts down: running jobs go on under their inits, recorded as running, for the
///    next server on the state directory to adopt; or, with `--stop-jobs-on-exit`, are stopped.
struct APIServerService: Service {
    let server: GRPCServer<TLSServerTransport>
    /// Filled once `makeWorker` returns.
    let workers: WorkerSlot
    let makeWorker: @Sendable () async throws -> Worker
    /// Shut down once the worker is.
    let blocking: BlockingWorkExecutor
    let phase: ServerPhase
    let notifier: SystemdNotifier?
    let shutdownGrace: Duration
    let shutdownDelay: Duration
    let leavesJobsRunning: Bool
    let logger: Logger
    /// Where the TLS material is read again at SIGHUP, and what it replaces.
    let tlsFiles: TLSFiles
    let credentials: ServerCredentials
    /// The settings read again at SIGHUP, and the call cap they may change.
    let settings: SettingsReload
    let streamQuota: StreamQuotaInterceptor
    /// Holds this process's id while it serves, for `jobworkerd reload`.
    let pidFile: String
    /// Says where the server listens; false if it could not.
    let onListening: @Sendable () async -> Bool

    func run() async throws {
        // A worker made means this server holds the state directory, and wrote the pid file.
        defer { if workers.filled != nil { try? FileManager.default.removeItem(atPath: pidFile) } }
        try await withGracefulShutdownHandler {
            // Each task says whether its end ends the serving: serve() returning (every call
            // done) or the grace for calls in flight passing does; the status reports do not.
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await reloadOnHangUp()
                    return false
                }
                group.addTask {
                    try await server.serve()
                    return true
                }
                group.addTask {
                    await closeListener()
                    return true
                }
                defer { group.cancelAll() }
                if await onListening() {
                    try await startServing(group: &group)
                }
                while let decisive = try await group.next(), !decisive {}
            }
        } onGracefulShutdown: {
            phase.beginDraining()
            notifier?.stopping()
        }
        if let worker = workers.filled {
            let running = worker.runningJobCount
            if leavesJobsRunning, running > 0 {
                logger.info("leaving \(running) running jobs to the next jobworkerd on this state directory")
            }
            // With `--stop-jobs-on-exit`, each job gets the grace period in force (`--grace-period`).
            await worker.shutdown(leavingJobsRunning: leavesJobsRunning)
        }
        await blocking.shutdown()
    }

    /// Makes the worker while the server listens, NOT_SERVING; then serves, and tells systemd.
    private func startServing(group: inout ThrowingTaskGroup<Bool, any Error>) async throws {
        notifier?.starting()
        let worker: Worker
        do {
            worker = try await makeWorker()
        } catch {
            server.beginGracefulShutdown()
            throw error
        }
        workers.fill(worker)
        try Data("\(getpid())\n".utf8).write(to: URL(fileURLWithPath: pidFile), options: .atomic)
        // READY=1 before the phase moves, so that a reload (which waits for serving) follows it;
        // none after a shutdown began during the start (systemd had STOPPING=1).
        if phase.current != .draining { notifier?.ready(runningJobs: worker.runningJobCount) }
        phase.beginServing()
        // For scripts, as READY=1 is for systemd: from this line on the job API answers.
        print("jobworkerd serving, \(worker.runningJobCount) running jobs adopted")
        fflush(nil)
        guard phase.current == .serving, let notifier else { return }
        group.addTask {
            await notifier.reportStatus(of: worker)
            return false
        }
        if let interval = notifier.watchdogInterval {
            group.addTask {
                await notifier.keepWatchdogFed(every: interval)
                return false
            }
        }
    }

    /// SIGHUP (`systemctl reload`, `jobworkerd reload`): the server's certificate, key and client
    /// CA, and the settings (the file and the variables under the flags), are read again and
    /// checked; then new connections get the new TLS material, and starts the new limits,
    /// ceilings, quotas and time limits. Open connections and running jobs are untouched. A
    /// reload that fails in any part changes nothing and says why.
    private func reloadOnHangUp() async {
        var settings = settings
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            // One sent while the worker is made waits for it: the worker starts with the
            // settings read at startup, and this one then applies what changed since.
            guard await phase.waitUntilStarted() == .serving else { continue }
            notifier?.reloading()
            do {
                // On the blocking threads: files, the YAML, user lookups, retention's deletions.
                let (reloaded, candidate) = try await blocking.run { [settings] in
                    var candidate = settings
                    let reloaded = try await candidate.read()
                    try tlsFiles.reload(into: credentials)
                    // The policy was checked as the worker checks it: this does not fail.
                    try workers.filled?.update(reloaded.policy)
                    return (reloaded, candidate)
                }
                streamQuota.setLimit(reloaded.maximumStreamsPerIdentity)
                settings = candidate
                logger.notice(
                    "reloaded: TLS certificate, key and client CA for new connections; job limits: \(reloaded.policy.resourcePolicy.summary); \(reloaded.policy.maximumRunningJobs) running jobs, \(reloaded.policy.maximumRunningJobsPerOwner.map(String.init) ?? "no limit") per owner; \(reloaded.maximumStreamsPerIdentity) calls per identity"
                )
                if !reloaded.needingRestart.isEmpty {
                    logger.warning(
                        "changed, but taking effect only at the next start: \(reloaded.needingRestart.joined(separator: ", "))"
                    )
                }
            } catch {
                logger.error("reload failed, keeping the current TLS material and settings: \(error)")
            }
            // Not once a shutdown has begun: systemd had STOPPING=1.
            if phase.current == .serving { notifier?.ready(runningJobs: workers.filled?.runningJobCount ?? 0) }
        }
    }

    /// Once draining has begun: waits out the delay, closes the listener, and returns once the
    /// calls in flight have had their grace (or the task is cancelled: serve() ended first).
    private func closeListener() async {
        await phase.waitUntilDraining()
        guard !Task.isCancelled else { return }
        try? await Task.sleep(for: shutdownDelay)
        server.beginGracefulShutdown()
        try? await Task.sleep(for: shutdownGrace)
        // Cancellation means serve() returned: every call finished within the grace.
        guard !Task.isCancelled else { return }
        logger.warning("calls still in flight after the shutdown grace of \(shutdownGrace): closing their connections")
    }
}
