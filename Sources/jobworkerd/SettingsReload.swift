import ArgumentParser
import Foundation
import JobWorker

/// What a reload (SIGHUP) reads again besides the TLS material: the configuration file, under the
/// command line's flags and the `JOBWORKERD_…` variables (both as the process got them: a
/// variable changes only with a restart), resolved and checked exactly as at startup. The
/// limits, ceilings, quotas and time limits take effect at once; any other setting that changed
/// is named as waiting for a restart (a listener, the state directory or the jobs' isolation
/// cannot change under running jobs).
struct SettingsReload: Sendable {
    /// The keys a reload applies: `WorkerPolicy` and the per-identity call cap.
    static let reloadable: Set<String> = [
        "default-cpu", "default-memory", "default-max-processes", "max-cpu", "max-memory", "max-io-read",
        "max-io-write", "max-processes", "max-running-jobs", "max-running-jobs-per-owner", "start-rate-per-owner",
        "start-burst-per-owner", "min-free-disk", "max-output-bytes", "default-timeout", "max-timeout",
        "grace-period", "retain-for", "retain-output", "max-streams-per-identity",
    ]

    /// serve's command line, as given.
    let commandLine: [String]
    /// The settings in force: the command line with the variables' and the file's settings.
    private(set) var arguments: [String]

    /// The settings of a reload, to apply.
    struct Reloaded {
        var policy: WorkerPolicy
        var maximumStreamsPerIdentity: Int
        /// The settings that changed but take a restart, by key.
        var needingRestart: [String]
    }

    /// The settings serve started with, as `JobWorkerDaemon` resolved them.
    static func start() -> SettingsReload {
        let commandLine = ServeSettings.serveArguments(of: Array(CommandLine.arguments.dropFirst())) ?? []
        return SettingsReload(
            commandLine: commandLine, arguments: ServeSettings.startupArguments.withLock { $0 } ?? commandLine)
    }

    /// Reads the settings again; throws, saying which setting and where, if serve would refuse
    /// them (nothing changes then). Once applied, they are the ones in force.
    mutating func read() async throws -> Reloaded {
        let resolved = try await ServeSettings.resolve(commandLine, environment: ProcessInfo.processInfo.environment)
        let serve: Serve
        do {
            serve = try Serve.parse(resolved.arguments)
        } catch {
            throw ValidationError(ServeSettings.attribute(Serve.message(for: error), to: resolved.sources))
        }
        let policy = try serve.workerPolicy(host: HostCapacity.measure())
        try policy.resourcePolicy.validate()
        let needingRestart = ServeSettings.keys.map(\.name).filter { name in
            !Self.reloadable.contains(name)
                && ServeSettings.values(of: name, in: arguments)
                    != ServeSettings.values(of: name, in: resolved.arguments)
        }
        arguments = resolved.arguments
        return Reloaded(
            policy: policy, maximumStreamsPerIdentity: serve.maxStreamsPerIdentity, needingRestart: needingRestart)
    }
}
