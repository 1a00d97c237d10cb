import Foundation
import GRPCCore
import JobWorker
import JobWorkerAPI
import Logging

/// A server as jobworkerd assembles it, for the benchmarks that call it over mutual TLS: a
/// worker with the blocking-work executor shared with the service, the audit, authorization and
/// per-identity interceptors (plus `extraInterceptors`), and in `directory` the certificates its
/// clients and the Python anchors use (bench.pem, ca.pem, server.pem and their keys).
struct BenchmarkServer: Sendable {
    let port: Int
    let worker: Worker
    let directory: String
    let credentials: ClientCredentials
    /// The blocking-work executor the service and the worker share.
    let blocking: BlockingWorkExecutor
}

/// Runs `body` with a `BenchmarkServer` whose state lives in `<root>/jobworker-<name>-<pid>`,
/// removed afterwards.
func withBenchmarkServer(
    name: String, root: String = "/dev/shm", configure: (inout WorkerConfiguration) -> Void = { _ in },
    extraInterceptors: [any ServerInterceptor] = [], _ body: (BenchmarkServer) async throws -> Void
) async throws {
    let directory = root + "/jobworker-\(name)-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = benchmarkConfiguration(stateDirectory: directory + "/state")
    configuration.cgroupParentName = "jobworker-\(name)-\(getpid())"
    configuration.logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
    let blocking = BlockingWorkExecutor()  // as jobworkerd: the service's and the worker's
    configuration.backgroundExecutor = blocking
    configure(&configuration)
    let worker = try await Worker(configuration: configuration)
    await worker.waitUntilInitsParked()

    let authority = try CertificateAuthority.create()
    let serverCertificate = try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
    let client = try authority.issueClientCertificate(name: "bench", role: "admin")
    try client.write(to: directory, name: "bench")
    try authority.root.write(to: directory, name: "ca")
    try serverCertificate.write(to: directory, name: "server")
    let credentials = ClientCredentials(
        certificateChainPEM: try client.certificatePEM, privateKeyPEM: client.privateKeyPEM,
        serverCAPEM: try authority.root.certificatePEM)
    let transport = try TLSServerTransport(
        host: "127.0.0.1", port: 0, certificateChainPEM: try serverCertificate.certificatePEM,
        privateKeyPEM: serverCertificate.privateKeyPEM, clientCAPEM: try authority.root.certificatePEM)
    let resolver = transport.identityResolver
    try await withGRPCServer(
        transport: transport, services: [JobWorkerService(worker: worker, blocking: blocking)],
        interceptors: [
            AuditInterceptor(logger: configuration.logger, resolver: resolver),
            AuthorizationInterceptor(resolver: resolver), StreamQuotaInterceptor(),
        ] + extraInterceptors
    ) { server in
        defer { server.beginGracefulShutdown() }
        let port = await transport.listeningAddress?.ipv4?.port ?? 0
        try await body(
            BenchmarkServer(
                port: port, worker: worker, directory: directory, credentials: credentials, blocking: blocking))
    }
    await worker.shutdown(gracePeriod: .zero)
    await blocking.shutdown()
}
