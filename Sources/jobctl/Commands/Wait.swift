import ArgumentParser
import GRPCCore
import JobWorkerAPI

/// `jobctl wait ID`: waits until the job has ended and exits as `run` does, with the job's exit
/// code or 128 + its signal, so that scripts can `jobctl start` now and `jobctl wait` later.
struct Wait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait for a job to end; exit with its exit code (128 + the signal if one ended it).")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print the final status as JSON.") var json = false
    @Option(help: "Give up after this long (30s, 5m, 1h): exit 1 and say so (default: wait as long as it takes).")
    var timeout: String?
    @Argument(help: "The job's id (CONTEXT/ID names its server).") var id: String

    func validate() throws {
        if let timeout, Self.duration(timeout) == nil {
            throw ValidationError("--timeout \(timeout): give a duration such as 30s, 5m or 1h")
        }
    }

    func run() async throws {
        var options = CallOptions.defaults
        options.timeout = timeout.flatMap(Self.duration)
        let callOptions = options
        let (server, id) = try connection.connection(forJob: self.id)
        let final = try await server.withClient { client in
            // A prompt answer first: an unreachable server or an unknown job fails at once.
            _ = try await server.promptly { try await client.getJobStatus(.with { $0.id = id }, options: $0) }
            return try await client.waitJob(.with { $0.id = id }, options: callOptions).status
        }
        if json { print(try JobStatusJSON.encode(final)) }
        throw ExitCode(try final.shellExitCode)
    }

    /// "30s", "5m", "1h", "500ms".
    static func duration(_ text: String) -> Duration? {
        if text.hasSuffix("ms"), let count = Int64(text.dropLast(2)), count > 0 { return .milliseconds(count) }
        let units: [Character: Int64] = ["h": 3600, "m": 60, "s": 1]
        guard let unit = text.last, let seconds = units[unit], let count = Int64(text.dropLast()), count > 0,
            count < Int64.max / 3600
        else { return nil }
        return .seconds(count * seconds)
    }
}
