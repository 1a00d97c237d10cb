import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Metrics
import Prometheus

/// `JobWorkerBenchmarks metrics-overhead [N] [ROUNDS]`: StartJob p50 and one reader's streaming
/// throughput with metrics off and on (swift-prometheus bootstrapped, the RPC metrics
/// interceptor in front, a scrape at the end), each side in child processes of its own (a
/// process bootstraps its metrics once), alternating off, on, off, on… in one run; medians of
/// the rounds.
func runMetricsOverheadBenchmark(_ arguments: [String]) async throws {
    let starts = arguments.first.flatMap(Int.init) ?? 300
    let rounds = arguments.dropFirst().first.flatMap(Int.init) ?? 3
    var results: [Bool: [(startP50: Double, megabytesPerSecond: Double)]] = [false: [], true: []]
    for _ in 0..<rounds {
        for metrics in [false, true] {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            child.arguments = ["metrics-side", metrics ? "on" : "off", "\(starts)"]
            let output = Pipe()
            child.standardOutput = output
            try child.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            child.waitUntilExit()
            let figures = text.split(separator: " ").compactMap {
                Double($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            guard child.terminationStatus == 0, figures.count == 2 else {
                throw BenchmarkFailure("metrics-side \(metrics) failed: \(text)")
            }
            results[metrics]!.append((figures[0], figures[1]))
        }
    }
    func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
    let off = (median(results[false]!.map(\.startP50)), median(results[false]!.map(\.megabytesPerSecond)))
    let on = (median(results[true]!.map(\.startP50)), median(results[true]!.map(\.megabytesPerSecond)))
    print(
        "\n| \(starts) StartJobs and 512 MiB streamed 3 times, \(rounds) rounds each side, alternating | metrics off | metrics on | on / off |"
    )
    print("|---|---|---|---|")
    print(String(format: "| StartJob p50 (ms) | %.3f | %.3f | %.3f× |", off.0, on.0, on.0 / off.0))
    print(String(format: "| one reader (MB/s) | %.0f | %.0f | %.3f× |", off.1, on.1, on.1 / off.1))
    for metrics in [false, true] {
        let rounds = results[metrics]!.map { String(format: "%.3f ms, %.0f MB/s", $0.startP50, $0.megabytesPerSecond) }
        print("\nRounds with metrics \(metrics ? "on" : "off"): " + rounds.joined(separator: "; "))
    }
    print("\nGoal: within 3 % (StartJob p50 ≤ 1.03×, streaming ≥ 0.97×).")
}

/// One side of `metrics-overhead`: prints "START_P50_MS MEGABYTES_PER_SECOND".
func runMetricsSide(_ arguments: [String]) async throws {
    let metrics = arguments.first == "on"
    let starts = arguments.dropFirst().first.flatMap(Int.init) ?? 300
    let registry = PrometheusCollectorRegistry()
    if metrics {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = MetricBuckets.durations
        MetricsSystem.bootstrap(factory)
    }
    let size = 512 << 20
    try await withBenchmarkServer(
        name: "metrics-\(metrics ? "on" : "off")", extraInterceptors: metrics ? [RPCMetricsInterceptor()] : []
    ) { server in
        var samples = Samples()
        var megabytesPerSecond = 0.0
        try await withGRPCClient(
            transport: try TLSClientTransport.make(
                to: HostAndPort(host: "127.0.0.1", port: server.port), credentials: server.credentials)
        ) { grpcClient in
            let jobs = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
            _ = try await jobs.listJobs(.init())  // connection and handshake out of the way
            for _ in 0..<starts {
                var id = ""
                try await samples.measure { id = try await jobs.startJob(measuredStartRequest).status.id }
                _ = try await server.worker.waitUntilEnded(JobID(id)!)
            }
            let writer = try await jobs.startJob(
                .with {
                    $0.command = "/bin/dd"
                    $0.args = ["if=/dev/zero", "bs=1M", "count=\(size >> 20)", "status=none"]
                }
            ).status.id
            _ = try await server.worker.waitUntilEnded(JobID(writer)!)
            // Three reads of it; the median.
            var rates: [Double] = []
            for _ in 0..<3 {
                let began = ContinuousClock.now
                let received = try await jobs.streamJobOutput(.with { $0.id = writer }) { response in
                    var total = 0
                    for try await message in response.messages { total += message.data.count }
                    return total
                }
                guard received == size else { throw BenchmarkFailure("streamed \(received) of \(size) bytes") }
                let elapsed = ContinuousClock.now - began
                rates.append(
                    Double(size) / 1e6
                        / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
            }
            megabytesPerSecond = rates.sorted()[1]
        }
        if metrics { _ = registry.emitToString() }  // a scrape, as Prometheus would
        print(String(format: "%.4f %.1f", samples.percentile(0.5), megabytesPerSecond))
    }
}

/// A measurement that could not be made, and why.
struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
