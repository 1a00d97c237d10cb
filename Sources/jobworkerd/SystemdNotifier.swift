import Foundation
import JobWorker
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// systemd's readiness protocol (sd_notify) without libsystemd: each message is one datagram of
/// `KEY=VALUE` lines to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the
/// abstract namespace). Under `Type=notify` systemd counts the server started at `READY=1`, shows
/// `STATUS=` in `systemctl status`, and with `WatchdogSec=` restarts a server that stops sending
/// `WATCHDOG=1`.
///
/// Sends never block and never fail the server: a lost datagram is logged, once.
final class SystemdNotifier: Sendable {
    private let address: sockaddr_un
    private let addressLength: socklen_t
    private let descriptor: Int32
    private let logger: Logger
    /// Whether a failed send was logged: once is enough.
    private let warned = Atomic(false)
    /// Half of `$WATCHDOG_USEC` when systemd's watchdog is on for this process.
    let watchdogInterval: Duration?

    /// The notifier systemd asked for, or nil when not started by it with `Type=notify`.
    static func fromEnvironment(logger: Logger) -> SystemdNotifier? {
        let environment = ProcessInfo.processInfo.environment
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        var watchdog: Duration?
        if let text = environment["WATCHDOG_USEC"], let microseconds = Int64(text), microseconds > 0,
            environment["WATCHDOG_PID"].map({ Int32($0) == getpid() }) ?? true
        {
            watchdog = .microseconds(microseconds / 2)
        }
        // Not for the jobs, nor for anything else this process starts.
        for name in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] { unsetenv(name) }
        guard let notifier = SystemdNotifier(path: path, watchdogInterval: watchdog, logger: logger) else {
            logger.error(
                "NOTIFY_SOCKET \(path.debugDescription) is not a usable unix socket address: systemd will not be told")
            return nil
        }
        return notifier
    }

    private init?(path: String, watchdogInterval: Duration?, logger: Logger) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // the abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        self.address = address
        self.addressLength = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes[0] == 0 ? 0 : 1))
        self.descriptor = descriptor
        self.watchdogInterval = watchdogInterval
        self.logger = logger
    }

    deinit { close(descriptor) }

    /// The listener is up and the worker is being made (`systemctl status` shows it meanwhile).
    func starting() {
        send("STATUS=starting: adopting the jobs of the previous run")
    }

    /// Adoption is done and the listener is up.
    func ready(runningJobs: Int) {
        send("READY=1\nSTATUS=\(Self.statusLine(runningJobs))\nMAINPID=\(getpid())")
    }

    /// A reload has begun; `ready` ends it.
    func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1_000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)\nSTATUS=reloading")
    }

    /// A graceful shutdown has begun.
    func stopping() {
        send("STOPPING=1\nSTATUS=shutting down")
    }

    /// Keeps `STATUS=` current: the number of running jobs, after each start and end (a watch of
    /// the worker's jobs, no polling). Returns when the task is cancelled or the worker shuts down.
    func reportStatus(of worker: Worker) async {
        var reported: Int?
        while !Task.isCancelled {
            do {
                // Every start and end (the snapshot first): a line only when the count moved.
                for try await _ in worker.watch(matching: JobFilter()) {
                    let running = worker.runningJobCount
                    guard running != reported else { continue }
                    reported = running
                    send("STATUS=\(Self.statusLine(running))")
                }
                return
            } catch let error as JobWorkerError where error.code == .resourceExhausted {
                continue  // fell behind a burst of starts: watch again
            } catch {
                return
            }
        }
    }

    /// Sends `WATCHDOG=1` every `interval` until the task is cancelled: systemd's watchdog
    /// protocol is a heartbeat, so this one timer is the protocol, not a poll.
    func keepWatchdogFed(every interval: Duration) async {
        while !Task.isCancelled {
            send("WATCHDOG=1")
            try? await Task.sleep(for: interval)
        }
    }

    private static func statusLine(_ running: Int) -> String {
        "serving; \(running) job\(running == 1 ? "" : "s") running"
    }

    private func send(_ message: String) {
        let bytes = Array(message.utf8)
        var address = address
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(descriptor, bytes, bytes.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), $0, addressLength)
            }
        }
        if sent < 0, !warned.exchange(true, ordering: .relaxed) {
            logger.warning(
                "could not notify systemd (\(message.prefix { $0 != "\n" })): \(String(cString: strerror(errno)))")
        }
    }
}
