import ArgumentParser
import Foundation
import JobWorkerAPI

/// What a job starts with besides its command line: environment and working directory, with
/// docker's flags (`-e`, `--env-file`, `-w`).
struct JobSpecOptions: ParsableArguments {
    @Option(
        name: [.customShort("e"), .customLong("env")],
        help: "An environment variable NAME=VALUE (repeatable); NAME alone takes jobctl's own value.")
    var environment: [String] = []

    @Option(
        help:
            "A file of environment variables, one NAME=VALUE a line (# comments, blank lines; NAME alone takes jobctl's own value), as docker reads it; -e wins."
    )
    var envFile: String?

    @Option(name: [.customShort("w"), .customLong("workdir")], help: "The job's working directory (absolute).")
    var workdir: String?

    @Option(help: "The signal a stop sends first: TERM (default), INT, HUP, QUIT, USR1 or USR2 (a name or a number).")
    var stopSignal: String?

    /// The --stop-signal as a number (0: the server's default, SIGTERM).
    func stopSignalNumber() throws -> Int32 {
        guard let stopSignal else { return 0 }
        let names = Signal.names.filter { ["HUP", "INT", "QUIT", "TERM", "USR1", "USR2"].contains($0.key) }
        guard let number = Signal.number(stopSignal, among: names) else {
            throw ValidationError("--stop-signal \(stopSignal): one of TERM, INT, HUP, QUIT, USR1, USR2")
        }
        return number
    }

    @Option(help: "Stop the job after this long (500ms, 30s, 5m, 1h); it then ends timed_out.")
    var timeout: String?

    @Option(help: "A name for the job, for people and for filtering (not unique).")
    var name: String?

    @Option(name: [.customShort("l"), .customLong("label")], help: "A label KEY=VALUE (repeatable).")
    var labels: [String] = []

    @Option(
        help:
            "Start the job at most once: a start with a token the server still keeps for you returns that job (the same command and flags) instead of starting another."
    )
    var clientToken: String?

    func validate() throws {
        _ = try Self.pairs(labels, flag: "--label")
        _ = try stopSignalNumber()
        if let timeout, Wait.duration(timeout) == nil {
            throw ValidationError("--timeout \(timeout): give a duration such as 500ms, 30s, 5m or 1h")
        }
    }

    /// `KEY=VALUE` pairs as a dictionary (the last of a key wins).
    static func pairs(_ entries: [String], flag: String) throws -> [String: String] {
        var pairs: [String: String] = [:]
        for entry in entries {
            guard let equals = entry.firstIndex(of: "=") else {
                throw ValidationError("\(flag) \(entry): give KEY=VALUE")
            }
            pairs[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        }
        return pairs
    }

    @Option(
        name: .customLong("stdin"),
        help: ArgumentHelp("Feed FILE (- : jobctl's stdin) to the job's stdin, up to 1 MiB.", valueName: "file"))
    var stdinFile: String?

    /// The most stdin a job may be given.
    static let maximumStandardInput = 1 << 20

    /// The bytes for the job's stdin: `--stdin FILE`, or jobctl's own stdin for `-`.
    func standardInput(readingOwnStdin: Bool = false) throws -> Data? {
        guard let source = readingOwnStdin ? "-" : stdinFile else { return nil }
        let handle: FileHandle
        if source == "-" {
            handle = .standardInput
        } else {
            guard let opened = FileHandle(forReadingAtPath: source) else {
                throw ValidationError("--stdin \(source): cannot be opened")
            }
            handle = opened
        }
        var data = Data()
        while data.count <= Self.maximumStandardInput {
            guard let chunk = try handle.read(upToCount: 64 << 10), !chunk.isEmpty else { return data }
            data += chunk
        }
        throw ValidationError("stdin for the job is over 1 MiB (\(source == "-" ? "jobctl's stdin" : source))")
    }

    /// The variables the flags give: the file's, then each `-e` in order (the last wins).
    func variables() throws -> [String: String] {
        var variables: [String: String] = [:]
        if let envFile {
            let text: String
            do {
                text = try String(contentsOfFile: envFile, encoding: .utf8)
            } catch {
                throw ValidationError("--env-file \(envFile): cannot be read as UTF-8 text")
            }
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.drop { $0 == " " || $0 == "\t" }
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                Self.add(String(trimmed), to: &variables)
            }
        }
        for entry in environment { Self.add(entry, to: &variables) }
        return variables
    }

    /// `NAME=VALUE`, or `NAME` with jobctl's own value (and nothing when jobctl has none).
    private static func add(_ entry: String, to variables: inout [String: String]) {
        if let equals = entry.firstIndex(of: "=") {
            variables[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
        } else if let value = ProcessInfo.processInfo.environment[entry] {
            variables[entry] = value
        }
    }
}
