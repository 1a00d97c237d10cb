import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorkerAPI
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Testing

@testable import JobWorker

/// The real transport: TLS 1.3 only, client certificates verified, identities from them.
@Suite("Mutual TLS 1.3", .timeLimit(.minutes(2)))
struct TLSTests {
    let pki: TestPKI

    init() throws {
        pki = try TestPKI()
    }

    var authority: CertificateAuthority { pki.authority }
    var caPEM: String { get throws { try pki.caPEM } }

    /// Runs `body` with the port of a TLS server in front of a real service.
    func withServer(_ body: (Int) async throws -> Void) async throws {
        try await withServer(interceptors: []) { port, _, _ in try await body(port) }
    }

    /// Runs `body` with the port of a TLS server in front of a real service, its worker and its
    /// transport; `interceptors` run before authorization.
    func withServer(
        interceptors: [any ServerInterceptor], _ body: (Int, Worker, TLSServerTransport) async throws -> Void
    ) async throws {
        try await withTLSServer(pki: pki, interceptors: interceptors) { server in
            try await body(server.port, server.worker, server.transport)
        }
    }

    /// ListJobs over mTLS with `client` (nil: no client certificate): nil on success, else the code.
    func listJobs(port: Int, client: IssuedCertificate?) async throws -> RPCError.Code? {
        let caPEM = try self.caPEM
        let security: HTTP2ClientTransport.Posix.TransportSecurity =
            try client.map(security(for:))
            ?? .tls { $0.trustRoots = .certificates([.bytes(Array(caPEM.utf8), format: .pem)]) }
        var options = CallOptions.defaults
        options.timeout = .seconds(10)
        let callOptions = options
        return try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security)
        ) { grpcClient in
            let jobs = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
            do {
                _ = try await jobs.listJobs(.init(), options: callOptions)
                return nil
            } catch let error as RPCError {
                return error.code
            }
        }
    }

    @Test("valid admin, user and viewer certificates are accepted")
    func validRoles() async throws {
        try await withServer { port in
            for role in Role.allCases {
                let client = try authority.issueClientCertificate(name: "n-\(role)", role: role.rawValue)
                #expect(try await listJobs(port: port, client: client) == nil, "\(role)")
            }
        }
    }

    @Test("a certificate whose OU names no role is authenticated but may do nothing")
    func unknownRole() async throws {
        try await withServer { port in
            let client = try authority.issueClientCertificate(name: "sam", role: "operator")
            #expect(try await listJobs(port: port, client: client) == .permissionDenied)
        }
    }

    @Test("refused: no client certificate, another CA's, an expired one, a server-only (EKU) one")
    func refusedCertificates() async throws {
        try await withServer { port in
            let other = try CertificateAuthority.create(commonName: "another CA")
            let foreign = try other.issueClientCertificate(name: "mallory", role: "admin")
            let expired = try authority.issueClientCertificate(
                name: "old", role: "admin", notValidBefore: Date() - 3 * 86_400, validity: 86_400)
            let serverOnly = try authority.issueServerCertificate(dnsNames: ["client"], ipAddresses: [])
            for (what, client) in [
                ("none", nil), ("other CA", foreign), ("expired", expired), ("serverAuth only", serverOnly),
            ]
                as [(String, IssuedCertificate?)]
            {
                let code = try await listJobs(port: port, client: client)
                #expect(code != nil && code != .permissionDenied, "\(what): \(String(describing: code))")
            }
        }
    }

    /// mTLS as `client`, trusting only the test CA.
    func security(for client: IssuedCertificate) throws -> HTTP2ClientTransport.Posix.TransportSecurity {
        try pki.security(for: client)
    }

    /// Streams the job's output from `offset` on a connection of its own, checking every byte
    /// against the helper's pattern; stops after `limit` bytes (a disconnect) if given.
    func streamPattern(
        port: Int, security: HTTP2ClientTransport.Posix.TransportSecurity, job: String, from offset: UInt64,
        limit: UInt64? = nil
    ) async throws -> UInt64 {
        try await withGRPCClient(
            transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: security)
        ) { grpcClient in
            try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).streamJobOutput(
                .with {
                    $0.id = job
                    $0.offset = offset
                }
            ) { response in
                var position = offset
                for try await message in response.messages {
                    #expect(message.offset == position)
                    guard matchesPattern(message.data, at: position) else {
                        Issue.record("bytes at \(position) differ from the pattern")
                        return position
                    }
                    position += UInt64(message.data.count)
                    if let limit, position - offset >= limit { return position }  // hang up mid-stream
                }
                return position
            }
        }
    }

    @Test("20 concurrent clients of one job writing 50 MB each get every byte; a client that hangs up resumes exactly")
    func concurrentStreamsAndResume() async throws {
        try await withServer { port in
            let alice = try security(for: try authority.issueClientCertificate(name: "alice", role: "user"))
            let size: UInt64 = 50 * 1024 * 1024
            let job = try await withGRPCClient(
                transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: alice)
            ) { grpcClient in
                try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).startJob(
                    .with {
                        $0.command = helperPath
                        $0.args = ["pattern", "\(size)"]
                    }
                ).status.id
            }
            let ends = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await streamPattern(port: port, security: alice, job: job, from: 0) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(ends == [UInt64](repeating: size, count: 20))

            // Hang up somewhere in the middle, then resume from the next offset.
            let cut = UInt64.random(in: 1..<size)
            let reached = try await streamPattern(port: port, security: alice, job: job, from: 0, limit: cut)
            #expect(reached >= cut)
            #expect(try await streamPattern(port: port, security: alice, job: job, from: reached) == size)
        }
    }

    @Test(
        "a client whose connection drops mid-stream leaves no handler task, descriptor or reader behind",
        arguments: ["a finished job's output", "a live job, its reader waiting for output"])
    func disconnectLeavesNothing(scenario: String) async throws {
        let (completions, finished) = AsyncStream<String>.makeStream()
        try await withServer(interceptors: [HandlerCompletions(finished: finished)]) { port, worker, transport in
            var completed = completions.makeAsyncIterator()
            let alice = try security(for: try authority.issueClientCertificate(name: "alice", role: "user"))
            let live = scenario.hasPrefix("a live job")
            let job = try await withGRPCClient(
                transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: alice)
            ) { grpcClient in
                try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).startJob(
                    .with {
                        $0.command = helperPath
                        $0.args = live ? ["sleep"] : ["pattern", "\(20 << 20)"]
                    }
                ).status.id
            }
            #expect(await completed.next() == "StartJob")
            if !live {
                // The job's own descriptors close at its end: let that happen first.
                _ = try await worker.waitUntilEnded(JobID(job)!)
            }
            // The pool replaces the init the job took (a socket, a pidfd), and the server closes
            // the starting client's connection: let both finish first.
            await worker.inits?.waitUntilParked(worker.configuration.prestartedInits)
            await transport.waitUntilOpenConnections(atMost: 0)
            let proxy = try CuttingProxy(upstreamPort: port)
            defer { proxy.close() }
            let before = try openDescriptors()
            let readers = worker.openOutputReaders

            let (firstData, gotData) = AsyncStream<Void>.makeStream()
            let streaming = Task {
                try await withGRPCClient(
                    transport: .http2NIOPosix(
                        target: .ipv4(address: "127.0.0.1", port: proxy.port), transportSecurity: alice)
                ) { grpcClient in
                    try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).streamJobOutput(
                        .with { $0.id = job }
                    ) { response in
                        for try await message in response.messages where !message.data.isEmpty { gotData.yield() }
                    }
                }
            }
            var data = firstData.makeAsyncIterator()
            await data.next()  // the server's reader is open and delivering (a live one then waits)
            #expect(worker.openOutputReaders == readers + 1)

            proxy.cut()  // the network fails: no RST_STREAM, no GOAWAY, no close_notify
            await #expect(throws: (any Error).self) { try await streaming.value }
            await proxy.waitUntilClosed()
            #expect(await completed.next() == "StreamJobOutput")  // the handler's task has ended
            await transport.waitUntilOpenConnections(atMost: 0)  // the server closed its socket
            #expect(worker.openOutputReaders == readers)
            let after = try openDescriptors()
            #expect(after.subtracting(before).isEmpty, "left open: \(after.subtracting(before))")
            if live { _ = try await worker.stop(JobID(job)!, gracePeriod: .zero) }
        }
    }

    @Test("a client limited to TLS 1.2 is refused at the handshake")
    func tls12Refused() async throws {
        try await withServer { port in
            let client = try authority.issueClientCertificate(name: "alice", role: "admin")
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.maximumTLSVersion = .tlsv12
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(try caPEM.utf8)))
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(try client.certificatePEM.utf8))
                .map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(client.privateKeyPEM.utf8), format: .pem))
            let context = try NIOSSLContext(configuration: tls)
            let outcome = HandshakeOutcome()
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                        try channel.pipeline.syncOperations.addHandler(outcome)
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            try await channel.closeFuture.get()
            #expect(outcome.completed == false)
            #expect(outcome.failed)
        }
    }
}

/// Records whether a TLS handshake completed or failed (the channel closes either way).
final class HandshakeOutcome: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Any
    // Touched only on the channel's event loop, read after the channel has closed.
    var completed = false
    var failed = false

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            completed = true
            context.close(promise: nil)  // nothing more to learn: the server accepted TLS 1.2
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed = true
        context.close(promise: nil)
    }
}

/// The helper's pattern: byte i is i mod 251.
private let pattern: [UInt8] = (0..<(1 << 20) + 251).map { UInt8($0 % 251) }

/// Whether `data`, starting at output offset `position`, is the pattern there (memcmp, a chunk
/// of at most 1 MiB at a time: these tests compare a gigabyte in a debug build).
func matchesPattern(_ data: Data, at position: UInt64) -> Bool {
    data.withUnsafeBytes { actual in
        pattern.withUnsafeBytes { expected in
            var checked = 0
            while checked < actual.count {
                let phase = Int((position + UInt64(checked)) % 251)
                let count = min(1 << 20, actual.count - checked)
                guard memcmp(actual.baseAddress! + checked, expected.baseAddress! + phase, count) == 0 else {
                    return false
                }
                checked += count
            }
            return true
        }
    }
}

/// The sockets and files this process has open, as "number -> target" (a socket's target names
/// its inode, so a new connection on a reused number still differs). Left out: one closed while
/// the list was read, and event-loop plumbing (epoll, eventfd, timerfd), which SwiftNIO creates
/// once per loop thread the first time that thread runs and keeps for the process's life.
func openDescriptors() throws -> Set<String> {
    Set(
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { entry in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry),
                !target.hasPrefix("anon_inode:")
            else { return nil }
            return "\(entry) -> \(target)"
        })
}

/// Reports the method of each RPC whose handler has finished, its response stream included: the
/// event a test waits for instead of sleeping.
struct HandlerCompletions: ServerInterceptor {
    let finished: AsyncStream<String>.Continuation

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            finished.yield(method)
            throw error
        }
        switch response.accepted {
        case .failure:
            finished.yield(method)
        case .success(var contents):
            let produce = contents.producer
            let finished = finished
            contents.producer = { writer in
                defer { finished.yield(method) }
                return try await produce(writer)
            }
            response.accepted = .success(contents)
        }
        return response
    }
}
