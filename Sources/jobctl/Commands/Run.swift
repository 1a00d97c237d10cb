import ArgumentParser
import Dispatch
import Foundation
import GRPCCore
import JobWorkerAPI
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `jobctl run`: start a job, stream its output, exit with its exit code. Ctrl-C (or SIGTERM)
/// stops the job with the server's grace period and exits 130 (143); a second one leaves at once.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a job, stream its output and exit with its exit code.",
        usage: "jobctl run [<limits>] [-e NAME=VALUE] [-w DIR] -- <command> [<args>...]",
        discussion: """
            Exit status: the job's exit code, or 128 + the signal number if a signal ended it (137 for \
            SIGKILL, OOM kills included), as shells report it. Ctrl-C stops the job and exits 130.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions
    @OptionGroup(title: "Environment") var spec: JobSpecOptions
    @Flag(
        name: [.customShort("i"), .customLong("interactive")],
        help: "Feed jobctl's stdin to the job (up to 1 MiB, read before it starts).")
    var interactive = false
    @OptionGroup var commandLine: JobCommandLine

    func validate() throws {
        if commandLine.asksForHelp { throw CleanExit.helpRequest(Self.self) }
    }

    func run() async throws {
        let connection = try connection.connection()
        let request = try commandLine.request(limits: limits, spec: spec, readingOwnStdin: interactive)
        let interruption = Interruption()
        let code = try await connection.withClient { client in
            let job = try await client.startJob(request, options: Connection.prompt).status
            interruption.onFirstSignal { signal in
                Terminal.writeError("jobctl: stopping job \(EscapedText.escaped(job.id))\n")
                Task { _ = try? await client.stopJob(.with { $0.id = job.id }) }
            }
            _ = try await OutputFollower(client: client, connection: connection, jobID: job.id).follow()
            let final = try await client.getJobStatus(.with { $0.id = job.id }, options: Connection.prompt).status
            if let signal = interruption.received { return 128 + signal }
            return try final.shellExitCode
        }
        throw ExitCode(code)
    }
}

/// SIGINT and SIGTERM while a job runs: the first one runs an action (stop the job), the second
/// exits at once. Signals that arrive before the action is known are remembered and acted upon
/// when it is set.
///
/// `@unchecked Sendable`: the dispatch sources are only kept alive here, never touched after
/// `init`; the state is behind a mutex.
final class Interruption: @unchecked Sendable {
    private struct State {
        var received: Int32?
        var action: (@Sendable (Int32) -> Void)?
    }
    private let state = Mutex(State())
    private let sources: [any DispatchSourceSignal]

    init() {
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            sources.append(source)
        }
        self.sources = sources
        for (source, signalNumber) in zip(sources, [SIGINT, SIGTERM]) {
            source.setEventHandler { [weak self] in self?.deliver(signalNumber) }
            source.resume()
        }
    }

    /// The first signal received, if any.
    var received: Int32? { state.withLock { $0.received } }

    /// Sets the action for the first signal, and runs it now if one has already arrived.
    func onFirstSignal(_ action: @escaping @Sendable (Int32) -> Void) {
        let pending = state.withLock { state -> Int32? in
            state.action = action
            return state.received
        }
        if let pending { action(pending) }
    }

    private func deliver(_ signalNumber: Int32) {
        let (first, action) = state.withLock { state -> (Int32?, (@Sendable (Int32) -> Void)?) in
            if let first = state.received { return (first, nil) }
            state.received = signalNumber
            return (nil, state.action)
        }
        if let first { exit(128 + first) }  // the second signal: leave without waiting
        action?(signalNumber)
    }
}
