import ArgumentParser
import JobWorkerAPI

/// The command line of a job: everything after `--` (or after the first word that is not a
/// jobctl flag), passed to the server as it is, without a shell.
struct JobCommandLine: ParsableArguments {
    @Argument(
        parsing: .captureForPassthrough,
        help: ArgumentHelp("The program and its arguments (after --).", valueName: "command"))
    var words: [String] = []

    /// The words after an optional leading `--`.
    private var commandWords: ArraySlice<String> { words.first == "--" ? words.dropFirst() : words[...] }
    var command: String { commandWords.first ?? "" }
    var arguments: [String] { Array(commandWords.dropFirst()) }

    /// `jobctl run --help` (the capture takes every word, --help included); `jobctl run -- --help`
    /// runs a program of that name.
    var asksForHelp: Bool { words.first == "--help" || words.first == "-h" }

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the command to run after --") }
    }

    func request(limits: LimitOptions, spec: JobSpecOptions, readingOwnStdin: Bool = false) throws
        -> Jobworker_V1_StartJobRequest
    {
        let environment = try spec.variables()
        let standardInput = try spec.standardInput(readingOwnStdin: readingOwnStdin)
        let labels = try JobSpecOptions.pairs(spec.labels, flag: "--label")
        let stopSignal = try spec.stopSignalNumber()
        return .with {
            if let standardInput { $0.stdin = standardInput }
            $0.command = command
            $0.args = arguments
            $0.limits = limits.message
            $0.env = environment
            $0.workingDir = spec.workdir ?? ""
            $0.name = spec.name ?? ""
            $0.labels = labels
            $0.stopSignal = stopSignal
            $0.clientToken = spec.clientToken ?? ""
            if let timeout = spec.timeout.flatMap(Wait.duration) {
                $0.timeoutMs = UInt64(
                    timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
            }
        }
    }
}

/// `jobctl start`: starts a job and prints only its id, for `id=$(jobctl start -- ...)`.
struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a job and print its id.",
        usage: "jobctl start [<limits>] [-e NAME=VALUE] [-w DIR] [--json] -- <command> [<args>...]")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions
    @OptionGroup(title: "Environment") var spec: JobSpecOptions
    @Flag(help: "Print the job's status as JSON instead of its id.") var json = false
    @OptionGroup var commandLine: JobCommandLine

    func validate() throws {
        if commandLine.asksForHelp { throw CleanExit.helpRequest(Self.self) }
    }

    func run() async throws {
        let request = try commandLine.request(limits: limits, spec: spec)
        let status = try await connection.connection().withClient { client in
            try await client.startJob(request, options: Connection.prompt).status
        }
        print(json ? try JobStatusJSON.encode(status) : EscapedText.escaped(status.id))
    }
}
