import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorker
import JobWorkerAPI

/// A client that lets the server send 1 MiB HTTP/2 frames (the default is 16 KiB): a 128 KiB
/// output chunk then travels in one frame instead of eight.
let streamingClientConfig: HTTP2ClientTransport.Posix.Config = {
    var config = HTTP2ClientTransport.Posix.Config.defaults
    config.http2.maxFrameSize = 1 << 20
    return config
}()

/// StartJob over mutual TLS and StreamJobOutput throughput to 1 and 20 clients, beside a plain
/// TLS 1.3 transfer (Python's ssl module) as the ceiling.
func benchmarkAPI(worker: Worker, directory: String, starts: Int, outputBytes: UInt64) async throws {
    let authority = try CertificateAuthority.create()
    let serverCertificate = try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
    let client = try authority.issueClientCertificate(name: "bench", role: "admin")
    let transport = try TLSServerTransport(
        host: "127.0.0.1", port: 0, certificateChainPEM: try serverCertificate.certificatePEM,
        privateKeyPEM: serverCertificate.privateKeyPEM, clientCAPEM: try authority.root.certificatePEM)
    let caPEM = try authority.root.certificatePEM
    let security = HTTP2ClientTransport.Posix.TransportSecurity.mTLS(
        certificateChain: [.bytes(Array(try client.certificatePEM.utf8), format: .pem)],
        privateKey: .bytes(Array(client.privateKeyPEM.utf8), format: .pem)
    ) { $0.trustRoots = .certificates([.bytes(Array(caPEM.utf8), format: .pem)]) }
    let resolver = CertificateIdentityResolver()

    try await withGRPCServer(
        transport: transport, services: [JobWorkerService(worker: worker)],
        interceptors: [AuthorizationInterceptor(resolver: resolver)]
    ) { server in
        defer { server.beginGracefulShutdown() }
        let port = await transport.listeningAddress?.ipv4?.port ?? 0
        let target = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security)
        var startLatency = Samples()
        var writer = ""
        try await withGRPCClient(transport: target) { grpcClient in
            let jobs = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
            _ = try await jobs.listJobs(.init())  // connection and TLS handshake out of the way
            for _ in 0..<starts {
                try await startLatency.measure {
                    _ = try await jobs.startJob(.with { $0.command = "/bin/true" })
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
            let clock = ContinuousClock()
            let began = clock.now
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        let target = try HTTP2ClientTransport.Posix(
                            target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security,
                            config: streamingClientConfig)
                        return try await withGRPCClient(transport: target) { grpcClient in
                            try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).streamJobOutput(
                                .with { $0.id = writerID }
                            ) { response in
                                var bytes = 0
                                for try await message in response.messages { bytes += message.data.count }
                                return bytes
                            }
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            precondition(total == clients * Int(outputBytes), "streamed \(total) bytes")
            return Double(total) / (clock.now - began).seconds / 1e6
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
        row("StartJob /bin/true, round trip (namespaces + init + cgroup)", startLatency.summary)
        print("\n| output streaming (\(outputBytes >> 20) MiB) | MB/s | share of plain TLS 1.3 |")
        print("|---|---|---|")
        print(String(format: "| plain TLS 1.3 transfer (Python ssl) | %.0f | 1.00 |", ceiling))
        print(String(format: "| StreamJobOutput, 1 client | %.0f | %.2f |", one, one / ceiling))
        print(String(format: "| StreamJobOutput, 20 clients together | %.0f | %.2f |", twenty, twenty / ceiling))
    }
}
