import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Logging
import ServiceLifecycle
import UnixSignals

/// Serves until a graceful shutdown, then leaves the running jobs to the next server (or stops
/// them), in the order an upgrade needs:
///
/// 1. SIGTERM: NOT_SERVING in health and `STOPPING=1` to systemd; output streams, waits and
///    watches end with UNAVAILABLE (clients resume, output by offset); unary calls are still
///    answered for `shutdownDelay`, time for load balancers to see NOT_SERVING.
/// 2. The listener closes (GOAWAY); calls in flight get up to `shutdownGrace` to finish, then
///    their connections are closed.
/// 3. The worker shuts down: running jobs go on under their inits, recorded as running, for the
///    next server on the state directory to adopt; or, with `--stop-jobs-on-exit`, are stopped.
struct APIServerService: Service {
    let server: GRPCServer<TLSServerTransport>
    let worker: Worker
    /// Shut down once the worker is.
    let blocking: BlockingWorkExecutor
    let phase: ServerPhase
    let notifier: SystemdNotifier?
    /// The jobs' grace period, for `--stop-jobs-on-exit` (and for jobs being stopped).
    let jobGrace: Duration
    let shutdownGrace: Duration
    let shutdownDelay: Duration
    let leavesJobsRunning: Bool
    let logger: Logger
    /// Where the TLS material is read again at SIGHUP, and what it replaces.
    let tlsFiles: TLSFiles
    let credentials: ServerCredentials
    let onListening: @Sendable () async -> Void

    func run() async throws {
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
                await onListening()
                // The jobs of a previous run were adopted when the worker was made: ready now.
                phase.beginServing()
                if let notifier {
                    notifier.ready(runningJobs: worker.runningJobCount)
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
                group.addTask {
                    await closeListener()
                    return true
                }

                defer { group.cancelAll() }
                while let decisive = try await group.next(), !decisive {}
            }
        } onGracefulShutdown: {
            phase.beginDraining()
            notifier?.stopping()
        }
        let running = worker.runningJobCount
        if leavesJobsRunning, running > 0 {
            logger.info("leaving \(running) running jobs to the next jobworkerd on this state directory")
        }
        await worker.shutdown(gracePeriod: jobGrace, leavingJobsRunning: leavesJobsRunning)
        await blocking.shutdown()
    }

    /// SIGHUP (`systemctl reload`, `jobworkerd reload`): the server's certificate, key and client
    /// CA are read again; new connections get them, open ones and running jobs are untouched. A
    /// reload that fails keeps the old material and says why.
    private func reloadOnHangUp() async {
        for await _ in await UnixSignalsSequence(trapping: .sighup) {
            notifier?.reloading()
            do {
                try tlsFiles.reload(into: credentials)
                logger.notice("reloaded the TLS certificate, key and client CA: new connections use them")
            } catch {
                logger.error("reload failed, keeping the current TLS material: \(error)")
            }
            notifier?.ready(runningJobs: worker.runningJobCount)
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
