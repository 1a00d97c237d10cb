import ArgumentParser
import JobWorkerAPI

/// `jobctl logs ID`: the job's output from its first byte, following live output until the job
/// ends; a dropped connection is resumed at the next byte.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a job's output from the first byte, following it until the job ends.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The job's id (CONTEXT/ID names its server).") var id: String

    func run() async throws {
        let (connection, id) = try connection.connection(forJob: self.id)
        try await connection.withClient { client in
            // A prompt answer first: an unreachable server or an unknown job fails within the
            // deadline, before a stream that has none.
            _ = try await connection.promptly { try await client.getJobStatus(.with { $0.id = id }, options: $0) }
            _ = try await OutputFollower(client: client, connection: connection, jobID: id).follow()
        }
    }
}

/// `jobctl status ID`: from one server, or (`--context a,b`, `--all-contexts`) from whichever of
/// several has the job.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a job's state, exit code or signal, times, limits and usage.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print the status as JSON.") var json = false
    @Argument(help: "The job's id (CONTEXT/ID names its server).") var id: String

    func run() async throws {
        if !self.id.contains("/"), try connection.namedContexts().count > 1 {
            let id = self.id
            let (servers, _) = try connection.connections()
            let answers = await askEach(servers) { client in
                try await client.getJobStatus(.with { $0.id = id }, options: Connection.prompt).status
            }
            let found = answers.compactMap { answer -> (Connection, Jobworker_V1_JobStatus)? in
                guard case .success(let status) = answer.result else { return nil }
                return (answer.connection, status)
            }
            for answer in answers {
                if case .failure(let failure) = answer.result, !failure.isNotFound {
                    Terminal.writeError("jobctl: \(answer.connection.label): \(failure.message)\n")
                }
            }
            guard !found.isEmpty else {
                throw CommandFailure(
                    "job \(EscapedText.escaped(id)) not found on \(answers.map(\.connection.label).joined(separator: ", "))"
                )
            }
            for (server, status) in found {
                print(
                    json
                        ? try JobStatusJSON.encode(status, server: server.label)
                        : "Server:   \(server.label)\n" + status.text)
            }
            return
        }
        let (server, id) = try connection.connection(forJob: self.id)
        let status = try await server.withClient { client in
            try await client.getJobStatus(.with { $0.id = id }, options: Connection.prompt).status
        }
        print(json ? try JobStatusJSON.encode(status) : status.text)
    }
}

/// `jobctl stop [--grace DURATION] ID`: returns once the job has ended, with its final status.
struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop a job: SIGTERM, then SIGKILL after the grace period; print its final status.")

    @OptionGroup var connection: ConnectionOptions
    @Option(
        help: "Time between SIGTERM and SIGKILL: 10s, 500ms, 1m30s, 0 (default: the server's).",
        transform: parseGracePeriod)
    var grace: Duration?
    @Flag(help: "Print the final status as JSON.") var json = false
    @Argument(help: "The job's id (CONTEXT/ID names its server).") var id: String

    func run() async throws {
        // The server answers once the job has ended: allow the grace period and some (the
        // server's own default is unknown here: allow ten minutes for it).
        var options = Connection.prompt
        options.timeout = (grace ?? .seconds(600)) + Connection.answerTimeout
        let milliseconds = grace.map { max(1, Int64(($0 / .milliseconds(1)).rounded())) }  // 0 would mean "default"
        let (server, id) = try connection.connection(forJob: self.id)
        let request = Jobworker_V1_StopJobRequest.with {
            $0.id = id
            $0.gracePeriodMs = UInt32(clamping: milliseconds ?? 0)  // 0: the server's default
        }
        let status = try await server.withClient { client in
            try await client.stopJob(request, options: options).status
        }
        print(json ? try JobStatusJSON.encode(status) : status.text)
    }
}

/// `jobctl list`: the jobs the caller may see, newest first.
struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the jobs you may see, newest first.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print the list as a JSON array of statuses.") var json = false
    @OptionGroup(title: "Filters") var filter: JobFilterOptions
    @Option(help: "List at most this many jobs (default: all, fetched a page at a time).") var limit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit: give at least 1") }
    }

    func run() async throws {
        let filter = try filter.filter()
        let request = Jobworker_V1_ListJobsRequest.with { $0.filter = filter }
        let (servers, unusable) = try connection.connections()
        let limit = limit
        let answers = await askEach(servers) { client in
            // Page after page until the last (or the limit): the server sends at most 1,000 a page.
            var jobs: [Jobworker_V1_JobStatus] = []
            var page = request
            page.pageSize = UInt32(min(limit ?? 1000, 1000))
            while true {
                let response = try await client.listJobs(page, options: Connection.prompt)
                jobs += response.jobs
                if response.nextPageToken.isEmpty || jobs.count >= (limit ?? .max) { break }
                page.pageToken = response.nextPageToken
            }
            return Array(jobs.prefix(limit ?? .max))
        }
        let several = servers.count > 1 || connection.allContexts || unusable
        var listed: [(server: String?, job: Jobworker_V1_JobStatus)] = []
        var failed = unusable
        for answer in answers {
            switch answer.result {
            case .success(let jobs): listed += jobs.map { (several ? answer.connection.label : nil, $0) }
            case .failure(let failure):
                // One server that does not answer: said, and the others still listed.
                guard several else { throw failure }
                Terminal.writeError("jobctl: \(answer.connection.label): \(failure.message)\n")
                failed = true
            }
        }
        if several {
            // Newest first across the servers, as each lists its own.
            listed.sort { $0.job.startedAt.date > $1.job.startedAt.date }
            if let limit { listed = Array(listed.prefix(limit)) }
        }
        if json {
            print(try JobStatusJSON.encode(listed.map(\.job), servers: several ? listed.map(\.server) : nil))
        } else {
            var table = JobRowsText(fitting: listed, showsServer: several)
            print(table.headerLine())
            for (server, job) in listed { print(table.row(job, server: server)) }
        }
        if failed { throw ExitCode(1) }
    }
}

/// "10s", "500ms", "1m30s", "2m", or a bare number of seconds.
private func parseGracePeriod(_ text: String) throws -> Duration {
    if let seconds = Double(text), seconds >= 0 { return .milliseconds(Int64(seconds * 1000)) }
    var total = Duration.zero
    var rest = Substring(text)
    let units: [(String, Duration)] = [
        ("ms", .milliseconds(1)), ("s", .seconds(1)), ("m", .seconds(60)), ("h", .seconds(3600)),
    ]
    while !rest.isEmpty {
        let number = rest.prefix { $0.isNumber || $0 == "." }
        rest = rest.dropFirst(number.count)
        guard let value = Double(number), let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }) else {
            throw ValidationError("\"\(text)\" is not a duration (10s, 500ms, 1m30s)")
        }
        rest = rest.dropFirst(unit.count)
        total += scale * value
    }
    guard !text.isEmpty else { throw ValidationError("give a duration (10s, 500ms, 1m30s)") }
    return total
}
