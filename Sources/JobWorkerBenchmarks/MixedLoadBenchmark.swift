import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Logging

/// `JobWorkerBenchmarks mixed-load [SECONDS] [--state-dir DIR]`: a server as jobworkerd
/// assembles it, and in client processes of their own (as jobctl runs): 2 clients that start
/// short jobs and wait for each back to back, 1 that polls GetJobStatus of a running job back to
/// back, first alone ("idle") and then while 20 clients stream a 64 MiB finished output over and
/// over at full speed. Prints StartJob and GetJobStatus p50/p99 of both phases.
func runMixedLoadBenchmark(_ arguments: [String]) async throws {
    let seconds = arguments.first.flatMap(Int.init) ?? 20
    let root = arguments.firstIndex(of: "--state-dir").map { arguments[$0 + 1] } ?? "/dev/shm"
    let serverSide = (
        starts: ServerLatencyInterceptor(method: Jobworker_V1_JobWorker.Method.StartJob.descriptor),
        statuses: ServerLatencyInterceptor(method: Jobworker_V1_JobWorker.Method.GetJobStatus.descriptor)
    )
    try await withBenchmarkServer(
        name: "mixed", root: root, extraInterceptors: [serverSide.starts, serverSide.statuses]
    ) { server in
        let (port, worker, directory) = (server.port, server.worker, server.directory)
        let output = try await worker.start(
            command: "/usr/bin/head", arguments: ["-c", "\(64 << 20)", "/dev/zero"], owner: "bench")
        _ = try await worker.waitUntilEnded(output.id)
        let polled = try await worker.start(command: "/bin/sleep", arguments: ["3600"], owner: "bench")

        func phase(streamers: Int) async throws -> LoadResult {
            let printed = try await runClientProcess(
                [
                    "load-clients", "\(port)", directory, "\(seconds)", output.id.description, polled.id.description,
                    "\(streamers)",
                ], directory: directory)
            if ProcessInfo.processInfo.environment["JOBWORKER_LOAD_SLOW"] != nil {
                print(printed.split(separator: "\n").filter { $0.hasPrefix("slow") }.sorted().joined(separator: "\n"))
            }
            var result = LoadResult(parsing: printed)
            (result.serverStarts, result.serverStatuses) = (serverSide.starts.take(), serverSide.statuses.take())
            return result
        }
        let idle = try await phase(streamers: 0)
        let loaded = try await phase(streamers: 20)
        _ = try await worker.stop(polled.id, gracePeriod: .zero)

        print("\n| mixed load, \(seconds) s a phase | idle p50 ms | idle p99 ms | loaded p50 ms | loaded p99 ms |")
        print("|---|---|---|---|---|")
        for (name, before, after) in [
            ("StartJob /bin/true (2 clients, back to back)", idle.starts, loaded.starts),
            ("GetJobStatus of a running job (1 client, back to back)", idle.statuses, loaded.statuses),
            ("… StartJob, inside the server", idle.serverStarts, loaded.serverStarts),
            ("… GetJobStatus, inside the server", idle.serverStatuses, loaded.serverStatuses),
        ] {
            print(
                String(
                    format: "| %@ | %.3f | %.3f | %.3f | %.3f |", name, before.percentile(0.5), before.percentile(0.99),
                    after.percentile(0.5), after.percentile(0.99)))
        }
        print(
            String(
                format:
                    "\nCalls: %d starts and %d statuses idle, %d and %d loaded; the 20 streams received %.0f MB/s together.",
                idle.starts.values.count, idle.statuses.values.count, loaded.starts.values.count,
                loaded.statuses.values.count, loaded.streamedBytes / Double(seconds) / 1e6))
        print(
            String(
                format: "Goals: GetJobStatus p99 under load %.3f ms (≤ 5); StartJob p99 %.2f× its idle p99 (≤ 3).",
                loaded.statuses.percentile(0.99), loaded.starts.percentile(0.99) / idle.starts.percentile(0.99)))
        print("Inits prepared on demand (the pool ran dry): \(worker.initsPreparedOnDemand)")
    }
}

/// What `load-clients` printed: "start NS", "status NS" and "streamed BYTES" lines.
struct LoadResult {
    var starts = Samples()
    var statuses = Samples()
    var streamedBytes = 0.0
    /// The same calls as the server timed them (`ServerLatencyInterceptor`).
    var serverStarts = Samples()
    var serverStatuses = Samples()

    init(parsing printed: String) {
        for line in printed.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let value = Int64(fields[1]) else { continue }
            switch fields[0] {
            case "start": starts.values.append(.nanoseconds(value))
            case "status": statuses.values.append(.nanoseconds(value))
            case "streamed": streamedBytes += Double(value)
            default: break
            }
        }
    }
}
