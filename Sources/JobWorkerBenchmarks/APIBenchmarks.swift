import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorker
import JobWorkerAPI

/// `JobWorkerBenchmarks api DIRECTORY STARTS OUTPUT_BYTES LIBRARY_START_P50_MS`: the API
/// benchmark, with a worker configured as the isolated one of the library benchmark.
func runAPIBenchmarks(_ arguments: [String]) async throws {
    guard arguments.count == 4, let starts = Int(arguments[1]), let outputBytes = UInt64(arguments[2]),
        let libraryStart = Double(arguments[3])
    else { fatalError("usage: JobWorkerBenchmarks api DIRECTORY STARTS OUTPUT_BYTES LIBRARY_START_P50_MS") }
    var configuration = benchmarkConfiguration(stateDirectory: arguments[0])
    configuration.cgroupParentName = "jobworker-bench-\(getpid())"
    let worker = try await Worker(configuration: configuration)
    try await benchmarkAPI(
        worker: worker, directory: arguments[0], starts: starts, outputBytes: outputBytes, libraryStart: libraryStart)
    await worker.shutdown(gracePeriod: .zero)
}

/// StartJob over mutual TLS and StreamJobOutput throughput to 1 and 20 clients, beside a plain
/// TLS 1.3 transfer (Python's ssl module) as the ceiling.
func benchmarkAPI(worker: Worker, directory: String, starts: Int, outputBytes: UInt64, libraryStart: Double)
    async throws
{
    let authority = try CertificateAuthority.create()
    let serverCertificate = try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
    let client = try authority.issueClientCertificate(name: "bench", role: "admin")
    let transport = try TLSServerTransport(
        host: "127.0.0.1", port: 0, certificateChainPEM: try serverCertificate.certificatePEM,
        privateKeyPEM: serverCertificate.privateKeyPEM, clientCAPEM: try authority.root.certificatePEM)
    let credentials = ClientCredentials(
        certificateChainPEM: try client.certificatePEM, privateKeyPEM: client.privateKeyPEM,
        serverCAPEM: try authority.root.certificatePEM)
    let resolver = transport.identityResolver

    try await withGRPCServer(
        transport: transport, services: [JobWorkerService(worker: worker)],
        interceptors: [AuthorizationInterceptor(resolver: resolver)]
    ) { server in
        defer { server.beginGracefulShutdown() }
        let port = await transport.listeningAddress?.ipv4?.port ?? 0
        let address = HostAndPort(host: "127.0.0.1", port: port)
        try client.write(to: directory, name: "bench")
        try authority.root.write(to: directory, name: "ca")
        let remoteStartLatency = try await measureStartsFromAnotherProcess(
            port: port, directory: directory, count: starts)
        var startLatency = Samples()
        var statusLatency = Samples()
        var writer = ""
        try await withGRPCClient(transport: try TLSClientTransport.make(to: address, credentials: credentials)) {
            grpcClient in
            let jobs = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
            _ = try await jobs.listJobs(.init())  // connection and TLS handshake out of the way
            for _ in 0..<starts {
                var id = ""
                try await startLatency.measure {
                    id = try await jobs.startJob(measuredStartRequest).status.id
                }
                // As in the library's measurement: the next start once this job has ended.
                _ = try await worker.waitUntilEnded(JobID(id)!)
            }
            let id = try await jobs.listJobs(.init()).jobs[0].id
            for _ in 0..<starts {
                try await statusLatency.measure {
                    _ = try await jobs.getJobStatus(.with { $0.id = id })
                }
            }
            writer = try await jobs.startJob(
                .with {
                    $0.command = "/usr/bin/head"
                    $0.args = ["-c", "\(outputBytes)", "/dev/zero"]
                }
            ).status.id
        }
        let writerID = writer
        _ = try await worker.waitUntilEnded(JobID(writerID)!)

        func stream(clients: Int) async throws -> Double {
            let result = try await measureStreamingFromOtherProcesses(
                port: port, directory: directory, job: writerID, clients: clients)
            precondition(result.bytes == clients * Int(outputBytes), "streamed \(result.bytes) bytes")
            return result.megabytesPerSecond
        }
        let one = try await stream(clients: 1)
        let twenty = try await stream(clients: 20)

        // The ceiling: a plain TLS 1.3 transfer of the same size over loopback.
        try serverCertificate.write(to: directory, name: "baseline-server")
        try authority.root.write(to: directory, name: "baseline-ca")
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/tls_baseline.py").path
        python.arguments = [
            "python3", script, directory + "/baseline-server.pem", directory + "/baseline-server-key.pem",
            directory + "/baseline-ca.pem", "\(outputBytes)",
        ]
        let pipe = Pipe()
        python.standardOutput = pipe
        try python.run()
        let printed = pipe.fileHandleForReading.readDataToEndOfFile()
        python.waitUntilExit()
        let ceiling =
            Double(String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0

        print("\n| over mutual TLS 1.3 | p50 ms | p99 ms |")
        print("|---|---|---|")
        row("StartJob /bin/true, round trip, client in another process (as jobctl)", remoteStartLatency.summary)
        row("StartJob /bin/true, round trip, client in the server's process", startLatency.summary)
        row("GetJobStatus, round trip (the RPC alone)", statusLatency.summary)
        print(
            String(
                format:
                    "\nStartJob p50 over the library's isolated start p50 (%.3f ms): +%.3f ms (other process), +%.3f ms (same process)",
                libraryStart, remoteStartLatency.percentile(0.5) - libraryStart,
                startLatency.percentile(0.5) - libraryStart))
        print("\n| output streaming (\(outputBytes >> 20) MiB) | MB/s | share of plain TLS 1.3 |")
        print("|---|---|---|")
        print(String(format: "| plain TLS 1.3 transfer (Python ssl) | %.0f | 1.00 |", ceiling))
        print(String(format: "| StreamJobOutput, 1 client process | %.0f | %.2f |", one, one / ceiling))
        print(
            String(
                format: "| StreamJobOutput, 20 client processes together | %.0f | %.2f |", twenty,
                twenty / ceiling))
    }
    try await benchmarkRecords(
        directory: directory, credentials: credentials, serverCertificate: serverCertificate,
        caPEM: try authority.root.certificatePEM)
}
