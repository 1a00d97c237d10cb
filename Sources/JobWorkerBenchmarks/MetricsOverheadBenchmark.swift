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
                rates.append(try await readRate(of: writer, size: size, with: jobs))
            }
            megabytesPerSecond = rates.sorted()[1]
        }
        if metrics { _ = registry.emitToString() }  // a scrape, as Prometheus would
        print(String(format: "%.4f %.1f", samples.percentile(0.5), megabytesPerSecond))
    }
}

/// `JobWorkerBenchmarks metrics-overhead-inprocess [ROUNDS] [STARTS]`: both sides in one process,
/// alternating round by round: one worker behind two servers, A as before and B with the RPC
/// metrics interceptor in front, and swift-prometheus behind a switch (`SwitchedMetricsFactory`)
/// that is off while A is measured and on while B is. Each round: STARTS StartJobs, then one read
/// of a finished job's 256 MiB output; medians of the rounds' p50s and rates.
func runInProcessMetricsOverheadBenchmark(_ arguments: [String]) async throws {
    let rounds = arguments.first.flatMap(Int.init) ?? 20
    let starts = arguments.dropFirst().first.flatMap(Int.init) ?? 100
    let registry = PrometheusCollectorRegistry()
    var prometheus = PrometheusMetricsFactory(registry: registry)
    prometheus.durationHistogramBuckets = MetricBuckets.durations
    MetricsSystem.bootstrap(SwitchedMetricsFactory(inner: prometheus))
    let size = 256 << 20
    try await withBenchmarkServer(name: "metrics-inprocess") { server in
        let read = { (name: String) in try String(contentsOfFile: server.directory + "/" + name, encoding: .utf8) }
        let transport = try TLSServerTransport(
            host: "127.0.0.1", port: 0, certificateChainPEM: try read("server.pem"),
            privateKeyPEM: try read("server-key.pem"), clientCAPEM: try read("ca.pem"))
        let resolver = transport.identityResolver
        let logger = server.worker.configuration.logger
        try await withGRPCServer(
            transport: transport, services: [JobWorkerService(worker: server.worker, blocking: server.blocking)],
            interceptors: [
                RPCMetricsInterceptor(), AuditInterceptor(logger: logger, resolver: resolver),
                AuthorizationInterceptor(resolver: resolver), StreamQuotaInterceptor(),
            ]
        ) { metered in
            defer { metered.beginGracefulShutdown() }
            let meteredPort = await transport.listeningAddress?.ipv4?.port ?? 0
            var startP50: [Bool: [Double]] = [false: [], true: []]
            var rates: [Bool: [Double]] = [false: [], true: []]
            try await withGRPCClient(
                transport: try TLSClientTransport.make(
                    to: HostAndPort(host: "127.0.0.1", port: server.port), credentials: server.credentials)
            ) { plainClient in
                try await withGRPCClient(
                    transport: try TLSClientTransport.make(
                        to: HostAndPort(host: "127.0.0.1", port: meteredPort), credentials: server.credentials)
                ) { meteredClient in
                    let clients = [
                        false: Jobworker_V1_JobWorker.Client(wrapping: plainClient),
                        true: Jobworker_V1_JobWorker.Client(wrapping: meteredClient),
                    ]
                    for metrics in [false, true] { _ = try await clients[metrics]!.listJobs(.init()) }
                    let writer = try await clients[false]!.startJob(
                        .with {
                            $0.command = "/bin/dd"
                            $0.args = ["if=/dev/zero", "bs=1M", "count=\(size >> 20)", "status=none"]
                        }
                    ).status.id
                    _ = try await server.worker.waitUntilEnded(JobID(writer)!)
                    for round in 0..<rounds {
                        // Which side goes first alternates too.
                        for metrics in round.isMultiple(of: 2) ? [false, true] : [true, false] {
                            SwitchedMetricsFactory.switchedOn.store(metrics, ordering: .relaxed)
                            let jobs = clients[metrics]!
                            var samples = Samples()
                            for _ in 0..<starts {
                                var id = ""
                                try await samples.measure {
                                    id = try await jobs.startJob(measuredStartRequest).status.id
                                }
                                _ = try await server.worker.waitUntilEnded(JobID(id)!)
                            }
                            startP50[metrics]!.append(samples.percentile(0.5))
                            rates[metrics]!.append(try await readRate(of: writer, size: size, with: jobs))
                        }
                    }
                }
            }
            SwitchedMetricsFactory.switchedOn.store(true, ordering: .relaxed)
            let scraped = registry.emitToString()
            guard scraped.contains("jobworker_rpcs_total") else { throw BenchmarkFailure("metrics did not record") }
            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            let (offStart, onStart) = (median(startP50[false]!), median(startP50[true]!))
            let (offRate, onRate) = (median(rates[false]!), median(rates[true]!))
            print(
                "\n| one process, \(rounds) alternating rounds of \(starts) StartJobs and a 256 MiB read | metrics off | metrics on | on / off |"
            )
            print("|---|---|---|---|")
            print(String(format: "| StartJob p50 (ms) | %.3f | %.3f | %.3f× |", offStart, onStart, onStart / offStart))
            print(String(format: "| one reader (MB/s) | %.0f | %.0f | %.3f× |", offRate, onRate, onRate / offRate))
            let spread = { (values: [Double]) in String(format: "%.0f–%.0f", values.min() ?? 0, values.max() ?? 0) }
            print("\nRates per round: off \(spread(rates[false]!)) MB/s, on \(spread(rates[true]!)) MB/s")
            print("Goal: within 3 % (StartJob p50 ≤ 1.03×, streaming ≥ 0.97×).")
        }
    }
}

/// One read of a finished job's whole output, `size` bytes, through `jobs`: MB/s.
private func readRate(
    of id: String, size: Int, with jobs: Jobworker_V1_JobWorker.Client<some ClientTransport>
) async throws -> Double {
    let began = ContinuousClock.now
    let received = try await jobs.streamJobOutput(.with { $0.id = id }) { response in
        var total = 0
        for try await message in response.messages { total += message.data.count }
        return total
    }
    guard received == size else { throw BenchmarkFailure("streamed \(received) of \(size) bytes") }
    return Double(size) / 1e6 / (ContinuousClock.now - began).seconds
}

/// A measurement that could not be made, and why.
struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
