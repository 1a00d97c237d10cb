import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Logging

/// `JobWorkerBenchmarks spec-starts [N]`: StartJob round trips over mutual TLS for a bare
/// /bin/true and for one with a full spec (20 environment variables, 10 labels, a name, 4 KiB
/// of stdin, a working directory, a timeout), alternating in one run, each start once the
/// previous job has ended; p50 and p99 of N each.
func runSpecStartBenchmark(_ arguments: [String]) async throws {
    let count = arguments.first.flatMap(Int.init) ?? 500
    let bare = measuredStartRequest
    var full = measuredStartRequest
    full.env = Dictionary(uniqueKeysWithValues: (0..<20).map { ("VARIABLE_\($0)", String(repeating: "v", count: 40)) })
    full.labels = Dictionary(uniqueKeysWithValues: (0..<10).map { ("example.com/label-\($0)", "value-\($0)") })
    full.name = "benchmark job with a full spec"
    full.stdin = Data(repeating: 0x61, count: 4096)
    full.workingDir = "/tmp"
    full.timeoutMs = 60_000
    let requests = [bare, full]
    try await withBenchmarkServer(name: "spec") { server in
        let (port, worker, credentials) = (server.port, server.worker, server.credentials)
        var samples = [Samples(), Samples()]
        try await withGRPCClient(
            transport: try TLSClientTransport.make(
                to: HostAndPort(host: "127.0.0.1", port: port), credentials: credentials)
        ) { grpcClient in
            let jobs = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
            _ = try await jobs.listJobs(.init())  // connection and TLS handshake out of the way
            for round in 0..<(2 * count) {
                var id = ""
                try await samples[round % 2].measure { id = try await jobs.startJob(requests[round % 2]).status.id }
                _ = try await worker.waitUntilEnded(JobID(id)!)
            }
        }
        print("\n| StartJob over mutual TLS, \(count) each, alternating | p50 ms | p99 ms |")
        print("|---|---|---|")
        row("/bin/true with limits (bare)", samples[0].summary)
        row("the same with 20 env vars, 10 labels, a name, 4 KiB stdin, a working dir, a timeout", samples[1].summary)
        print(
            String(
                format: "\nFull spec p50 / bare p50: %.3f× (goal ≤ 1.15×)",
                samples[1].percentile(0.5) / samples[0].percentile(0.5)))
    }
}
