import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorkerAPI
import Logging
import Testing

@testable import JobWorker

/// A CA for tests, with a server certificate for 127.0.0.1.
struct TestPKI: Sendable {
    let authority: CertificateAuthority
    let server: IssuedCertificate

    init() throws {
        authority = try CertificateAuthority.create()
        server = try authority.issueServerCertificate(dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
    }

    var caPEM: String { get throws { try authority.root.certificatePEM } }

    /// mTLS as `client`, trusting only the test CA.
    func security(for client: IssuedCertificate) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        let caPEM = try self.caPEM
        return .mTLS(
            certificateChain: [.bytes(Array(try client.certificatePEM.utf8), format: .pem)],
            privateKey: .bytes(Array(client.privateKeyPEM.utf8), format: .pem)
        ) { $0.trustRoots = .certificates([.bytes(Array(caPEM.utf8), format: .pem)]) }
    }

    /// mTLS with a new certificate for `name` in `role`.
    func security(name: String, role: String) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        try security(for: try authority.issueClientCertificate(name: name, role: role))
    }
}

/// A TLS server in front of a real service, as `withTLSServer` runs it.
struct TLSTestServer: Sendable {
    let port: Int
    let worker: Worker
    let transport: TLSServerTransport

    /// A client transport to this server.
    func client(_ security: HTTP2ClientTransport.Posix.TransportSecurity) throws -> HTTP2ClientTransport.Posix {
        try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security)
    }
}

/// Runs `body` with a TLS server (TLSServerTransport, as jobworkerd assembles it) in front of a
/// real service: the audit interceptor if `auditLogger` is given, then `interceptors`, then
/// authorization, then the per-identity call cap if `callsPerIdentity` is given.
func withTLSServer(
    pki: TestPKI, limits: ConnectionLimits = ConnectionLimits(), interceptors: [any ServerInterceptor] = [],
    auditLogger: Logger? = nil, callsPerIdentity: Int? = nil,
    _ body: (TLSTestServer) async throws -> Void
) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = WorkerConfiguration(stateDirectory: directory)
    configuration.resourceControl = canUseCgroups ? .cgroups : .disabled
    configuration.isolation = canUseCgroups ? .namespaces : .none
    configuration.cgroupParentName = "jobworker-tls-test-\(JobID().shortDescription)"
    if geteuid() != 0 { configuration.jobUsers = .worker }
    let worker = try await Worker(configuration: configuration)
    let transport = try TLSServerTransport(
        host: "127.0.0.1", port: 0, certificateChainPEM: try pki.server.certificatePEM,
        privateKeyPEM: pki.server.privateKeyPEM, clientCAPEM: try pki.caPEM, limits: limits)
    let resolver = transport.identityResolver
    let all: [any ServerInterceptor] =
        (auditLogger.map { [AuditInterceptor(logger: $0, resolver: resolver)] } ?? []) + interceptors
        + [AuthorizationInterceptor(resolver: resolver)]
        + (callsPerIdentity.map { [StreamQuotaInterceptor(limit: $0)] } ?? [])
    do {
        try await withGRPCServer(
            transport: transport,
            services: [
                JobWorkerService(
                    worker: worker, requestLimits: RequestLimits(startJobBytes: limits.maximumRequestBytes))
            ],
            interceptors: all
        ) { grpcServer in
            defer { grpcServer.beginGracefulShutdown() }
            let port = try #require(await transport.listeningAddress?.ipv4?.port)
            try await body(TLSTestServer(port: port, worker: worker, transport: transport))
        }
    } catch {
        await worker.shutdown(gracePeriod: .zero)
        throw error
    }
    await worker.shutdown(gracePeriod: .zero)
}
