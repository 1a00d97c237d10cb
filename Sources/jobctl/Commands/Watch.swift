import ArgumentParser
import Foundation
import GRPCCore
import JobWorkerAPI

/// `jobctl watch [filters]`: the jobs you may see, then a row for each start and end as it
/// happens (as `kubectl get -w` does), or one JSON status a line with `--json`; until interrupted.
///
/// A watch the server dropped for falling behind, or a lost connection, is resumed with a note on
/// stderr: the server sends the current statuses again, then the changes.
struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the jobs you may see, then each start and end as it happens, until interrupted.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Print one JSON status a line (JSON lines) instead of a table.") var json = false
    @OptionGroup(title: "Filters") var filter: JobFilterOptions

    /// Columns as wide as most jobs need (ids are 36 characters); a wider cell widens its column.
    static let columnWidths = [36, 12, 16, 4]

    func run() async throws {
        let filter = try filter.filter()
        let request = Jobworker_V1_WatchJobsRequest.with { $0.filter = filter }
        let (servers, unusable) = try connection.connections()
        let several = servers.count > 1 || connection.allContexts || unusable
        let json = json
        if !json { print(JobRowsText(minimumWidths: Self.columnWidths, showsServer: several).headerLine()) }
        guard several else {
            try await Self.follow(servers[0], request: request, json: json, showsServer: false)
            return
        }
        // Every server at once; one that does not answer is said, and the others go on.
        let failures = await withTaskGroup(of: Bool.self) { group in
            for server in servers {
                group.addTask {
                    do {
                        try await Self.follow(server, request: request, json: json, showsServer: true)
                        return false
                    } catch {
                        Terminal.writeError("jobctl: \(server.label): \(CommandFailure(error).message)\n")
                        return true
                    }
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        if failures > 0 || unusable { throw ExitCode(1) }
    }

    /// One server's watch, printed as it comes, resumed when dropped or disconnected.
    static func follow(
        _ server: Connection, request: Jobworker_V1_WatchJobsRequest, json: Bool, showsServer: Bool
    ) async throws {
        let label = showsServer ? server.label : nil
        try await server.withClient { client in
            // A prompt answer first: an unreachable server or a denied caller fails within the
            // deadline, before a stream that has none.
            _ = try await server.promptly { try await client.listJobs(.with { $0.pageSize = 1 }, options: $0) }
            var backoff = Backoff()
            while true {
                do {
                    try await client.watchJobs(request) { response in
                        var table = JobRowsText(minimumWidths: Self.columnWidths, showsServer: showsServer)
                        for try await message in response.messages {
                            print(
                                json
                                    ? try JobStatusJSON.encodeLine(message.status, server: label)
                                    : table.row(message.status, server: label))
                            fflush(nil)  // a pipe reader sees each change as it happens
                        }
                    }
                    return  // the server ended the watch without an error: nothing more will come
                } catch let error as RPCError where error.code == .resourceExhausted && error.isServerVerdict {
                    Terminal.writeError(
                        "jobctl: \(server.label): the server dropped this watch for falling behind; watching again\n")
                } catch let error as RPCError where error.code == .unavailable {
                    if let what = error.serverNotServing {
                        // Answering but not serving yet, or any more: wait for it.
                        Terminal.writeError("jobctl: \(server.label) \(what); watching again once it serves\n")
                        try await backoff.pause()
                    } else {
                        Terminal.writeError("jobctl: connection to \(server.address) lost; reconnecting\n")
                        backoff.reset()
                    }
                    _ = try await Backoff.untilAnswered { options in
                        try await client.listJobs(.with { $0.pageSize = 1 }, options: options)
                    }
                }
            }
        }
    }
}
