import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import JobWorkerTestPrograms
import SwiftProtobuf
import Synchronization
import Testing
import X509

@testable import JobWorker
@testable import JobWorkerAPI

#if canImport(Glibc)
    import Glibc
#endif

/// The API as a hostile client sees it, over the real transport: malformed and oversized
/// requests, forged identities, connection floods, and one identity hogging calls.
@Suite("Hostile clients", .timeLimit(.minutes(3)))
struct HostileClientTests {
    let pki: TestPKI

    init() throws {
        pki = try TestPKI()
    }

    typealias Method = Jobworker_V1_JobWorker.Method

    @Test("invalid UTF-8 in each string field of each request is INVALID_ARGUMENT naming the field")
    func invalidUTF8() async throws {
        let cases: [(MethodDescriptor, UInt64, String)] = [
            (Method.StartJob.descriptor, 1, "command"), (Method.StartJob.descriptor, 2, "args"),
            (Method.StopJob.descriptor, 1, "id"), (Method.GetJobStatus.descriptor, 1, "id"),
            (Method.StreamJobOutput.descriptor, 1, "id"),
        ]
        try await withTLSServer(pki: pki) { server in
            try await withGRPCClient(transport: try server.client(pki.security(name: "alice", role: "admin"))) {
                client in
                for (method, field, name) in cases {
                    let outcome = await client.rawCall(method, messages: [Wire.field(field, Wire.invalidUTF8)])
                    #expect(outcome.code == .invalidArgument, "\(method.method).\(name): \(outcome)")
                    #expect(outcome.message.contains("field \(name) "), "\(method.method).\(name): \(outcome)")
                    #expect(outcome.message.contains("UTF-8"), "\(outcome)")
                }
            }
        }
    }

    @Test("a request stream of no message or of two is INVALID_ARGUMENT, for every method")
    func requestCount() async throws {
        try await withTLSServer(pki: pki) { server in
            try await withGRPCClient(transport: try server.client(pki.security(name: "alice", role: "admin"))) {
                client in
                for method in allMethods {
                    for messages in [[], [[], []]] as [[[UInt8]]] {
                        let outcome = await client.rawCall(method, messages: messages)
                        #expect(outcome.code == .invalidArgument, "\(method.method), \(messages.count): \(outcome)")
                    }
                }
            }
        }
    }

    @Test("a 5 MiB request is RESOURCE_EXHAUSTED giving its size and the limit; the connection goes on")
    func oversizedRequest() async throws {
        try await withTLSServer(pki: pki) { server in
            try await withGRPCClient(transport: try server.client(pki.security(name: "alice", role: "user"))) {
                grpcClient in
                let client = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
                let request = Jobworker_V1_StartJobRequest.with {
                    $0.command = "/bin/true"
                    $0.args = [String](repeating: String(repeating: "x", count: 1 << 20), count: 5)
                }
                do {
                    _ = try await client.startJob(request)
                    Issue.record("a 5 MiB StartJob was accepted")
                } catch let error as RPCError {
                    #expect(error.code == .resourceExhausted, "\(error)")
                    #expect(error.message.contains("\(4 << 20)"), "\(error.message)")
                    let size = try request.serializedBytes() as [UInt8]
                    #expect(error.message.contains("\(size.count) bytes"), "\(error.message)")
                }
                // Every method but StartJob takes 64 KiB at most.
                do {
                    _ = try await client.getJobStatus(.with { $0.id = String(repeating: "y", count: 100_000) })
                    Issue.record("a 100 kB GetJobStatus was accepted")
                } catch let error as RPCError {
                    #expect(error.code == .resourceExhausted, "\(error)")
                    #expect(error.message.contains("\(64 << 10)"), "\(error.message)")
                }
                _ = try await client.listJobs(.init())
                #expect(server.transport.counters.requestsOverSizeLimit == 1)
            }
        }
    }

    @Test("2 MB of arguments in a request under the limit is INVALID_ARGUMENT naming the ARG_MAX limit")
    func argumentsOverArgMax() async throws {
        try await withTLSServer(pki: pki) { server in
            try await withGRPCClient(transport: try server.client(pki.security(name: "alice", role: "user"))) {
                grpcClient in
                let client = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
                do {
                    _ = try await client.startJob(
                        .with {
                            $0.command = "/bin/true"
                            $0.args = [String](repeating: String(repeating: "a", count: 100_000), count: 20)
                        })
                    Issue.record("2 MB of arguments were accepted")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument, "\(error)")
                    #expect(error.message.contains("at most \(ArgumentLimits.hostTotalBytes)"), "\(error.message)")
                    #expect(error.message.contains("ARG_MAX"), "\(error.message)")
                }
            }
        }
    }

    @Test("a job id with a newline is INVALID_ARGUMENT; the audit log records it as malformed, one record a line")
    func jobIDWithNewline() async throws {
        let records = LogRecords()
        try await withTLSServer(pki: pki, auditLogger: records.logger) { server in
            try await withGRPCClient(transport: try server.client(pki.security(name: "alice", role: "user"))) {
                grpcClient in
                let client = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
                let forged = "x\n2026-12-07 info jobworkerd : {\"caller\":\"root\",\"outcome\":\"ok\"}"
                let code = await statusCode { _ = try await client.getJobStatus(.with { $0.id = forged }) }
                #expect(code == .invalidArgument)
            }
        }
        let messages = records.all.flatMap { Array($0.values) }  // every field of every record
        #expect(!messages.contains { $0.contains("\n") })
        #expect(records.auditTrail.map { $0["job"] } == ["malformed"])
        #expect(records.auditTrail.first?["outcome"] == "invalidArgument")
    }

    @Test("a CN with a newline, or a subject with two CNs and two OUs, is UNAUTHENTICATED, saying why")
    func forgedIdentities() async throws {
        let records = LogRecords()
        let newline = try pki.authority.issueClientCertificate(
            subject: try DistinguishedName {
                OrganizationalUnitName("user")
                CommonName("mallory\n2026-12-07 info jobworkerd : {\"caller\":\"admin\"}")
            })
        let twoOfEach = try pki.authority.issueClientCertificate(
            subject: try DistinguishedName {
                OrganizationalUnitName("user")
                CommonName("mallory")
                OrganizationalUnitName("admin")
                CommonName("bob")
            })
        let escape = try pki.authority.issueClientCertificate(
            subject: try DistinguishedName {
                OrganizationalUnitName("admin")
                CommonName("eve\u{1B}]52;c;aGVsbG8=\u{07}")
            })
        try await withTLSServer(pki: pki, auditLogger: records.logger) { server in
            for (certificate, expected) in [
                (newline, "control characters"), (twoOfEach, "exactly one CN and one OU"),
                (escape, "control characters"),
            ] {
                try await withGRPCClient(transport: try server.client(pki.security(for: certificate))) { grpcClient in
                    let client = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
                    do {
                        _ = try await client.listJobs(.init())
                        Issue.record("\(expected): accepted")
                    } catch let error as RPCError {
                        #expect(error.code == .unauthenticated, "\(error)")
                        #expect(error.message.contains(expected), "\(error.message)")
                        #expect(!error.message.contains("\n") && !error.message.contains("\u{1B}"))
                    }
                }
            }
        }
        let messages = records.all.flatMap { Array($0.values) }  // every field of every record
        #expect(!messages.contains { $0.contains("\n") || $0.contains("\u{1B}") })
        #expect(records.auditTrail.count == 3)
        #expect(records.auditTrail.allSatisfy { $0["caller"] == "-" && $0["outcome"] == "unauthenticated" })
    }

    @Test("connections opened and closed in a tight loop by two identities: every call is its own connection's")
    func connectionChurn() async throws {
        try await withTLSServer(pki: pki) { server in
            let alice = try pki.security(name: "alice", role: "user")
            let bob = try pki.security(name: "bob", role: "user")
            let job = try await withGRPCClient(transport: try server.client(alice)) { grpcClient in
                try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).startJob(
                    .with {
                        $0.command = helperPath
                        $0.args = ["exit", "0"]
                    }
                ).status.id
            }
            let mixups = Tally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<4 {
                    group.addTask {
                        for round in 0..<50 {
                            let isAlice = (lane + round) % 2 == 0
                            try await withGRPCClient(transport: try server.client(isAlice ? alice : bob)) {
                                grpcClient in
                                let client = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
                                let code = await statusCode { _ = try await client.getJobStatus(.with { $0.id = job }) }
                                if code != (isAlice ? nil : .notFound) { mixups.add() }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(mixups.count == 0)
            // A client that sends the tag header itself is refused: it tries to name a connection.
            try await withGRPCClient(transport: try server.client(bob)) { grpcClient in
                let client = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
                var forged = Metadata()
                forged.addString(String(repeating: "0", count: 32), forKey: ConnectionTagger.headerName)
                let code = await statusCode {
                    _ = try await client.getJobStatus(.with { $0.id = job }, metadata: forged)
                }
                #expect(code == .unauthenticated)
                _ = try await client.listJobs(.init())
            }
        }
    }

    @Test("2,000 idle TCP connections are closed within the handshake timeout while a real client is served")
    func idleConnections() async throws {
        try raiseDescriptorLimit(to: 16_384)
        var limits = ConnectionLimits()
        limits.handshakeTimeout = .seconds(2)
        limits.maximumConnectionsPerAddress = 4096
        limits.maximumConnections = 4096
        try await withTLSServer(pki: pki, limits: limits) { server in
            let opened = ContinuousClock.now
            let sockets = try (0..<2000).map { _ in try connectTCP(port: server.port) }
            defer { for socket in sockets { close(socket) } }
            let client = try pki.security(name: "alice", role: "user")
            try await withGRPCClient(transport: try server.client(client)) { grpcClient in
                _ = try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).listJobs(.init())
            }
            let closed = try await Task.detached { try waitForEndOfFile(sockets, within: .seconds(10)) }.value
            #expect(closed == sockets.count)
            let elapsed = ContinuousClock.now - opened
            #expect(elapsed < .seconds(8), "closed after \(elapsed)")
            #expect(server.transport.counters.connectionsTimedOutInHandshake >= 2000)
            // And the server still serves.
            try await withGRPCClient(transport: try server.client(client)) { grpcClient in
                _ = try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).listJobs(.init())
            }
        }
    }

    @Test("connections over the per-address cap are closed as they are accepted, and counted")
    func connectionsPerAddress() async throws {
        var limits = ConnectionLimits()
        limits.maximumConnectionsPerAddress = 8
        limits.handshakeTimeout = .seconds(60)
        try await withTLSServer(pki: pki, limits: limits) { server in
            let sockets = try (0..<20).map { _ in try connectTCP(port: server.port) }
            defer { for socket in sockets { close(socket) } }
            // Which eight are admitted depends on the event loop each lands on; twelve are
            // closed at once, long before any handshake deadline.
            let closed = try await Task.detached { try waitForEndOfFile(sockets, within: .seconds(3)) }.value
            #expect(closed == 12)
            #expect(server.transport.counters.connectionsRefusedOverAddress == 12)
        }
    }

    @Test("one identity's 200 concurrent calls are capped at its limit while another identity is served")
    func callsPerIdentity() async throws {
        try await withTLSServer(pki: pki, callsPerIdentity: 50) { server in
            let alice = try pki.security(name: "alice", role: "user")
            let bob = try pki.security(name: "bob", role: "user")
            let job = try await withGRPCClient(transport: try server.client(alice)) { grpcClient in
                try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).startJob(
                    .with {
                        $0.command = helperPath
                        $0.args = ["sleep"]
                    }
                ).status.id
            }
            let (outcomes, report) = AsyncStream.makeStream(of: RPCError.Code?.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await withGRPCClient(transport: try server.client(alice)) { grpcClient in
                            let client = Jobworker_V1_JobWorker.Client(wrapping: grpcClient)
                            await withTaskGroup(of: Void.self) { calls in
                                for _ in 0..<50 {
                                    calls.addTask {
                                        report.yield(
                                            await statusCode {
                                                try await client.streamJobOutput(.with { $0.id = job }) { response in
                                                    for try await _ in response.messages {}
                                                }
                                            })
                                    }
                                }
                            }
                        }
                    }
                }
                var results = outcomes.makeAsyncIterator()
                // The 150 beyond the cap end at once; the 50 within it wait for output.
                for _ in 0..<150 {
                    #expect(await results.next() == .some(.resourceExhausted))
                }
                try await withGRPCClient(transport: try server.client(bob)) { grpcClient in
                    _ = try await Jobworker_V1_JobWorker.Client(wrapping: grpcClient).listJobs(.init())
                }
                _ = try await server.worker.stop(try #require(JobID(job)), gracePeriod: .zero)
                for _ in 0..<50 {
                    #expect(await results.next() == .some(nil))
                }
                report.finish()
                try await group.waitForAll()
            }
        }
    }
}

/// Memory above MemTotal and CPU above the online CPUs, with no ceilings configured.
@Suite("Host-sized ceilings", .timeLimit(.minutes(1)))
struct HostCeilingTests {
    @Test(
        "with no ceilings configured, memory and CPU above the host's are INVALID_ARGUMENT, and so are limits too small to run"
    )
    func hostCeilings() async throws {
        let capacity = HostCapacity.measure()
        #expect(capacity.memoryBytes > 0 && capacity.memoryBytes <= (SharedJobLimits.hostMemoryTotal() ?? 0))
        #expect(capacity.cpuMillis == UInt32(sysconf(Int32(_SC_NPROCESSORS_ONLN))) * 1000)
        try await withAPI { client in
            for (limits, named) in [
                (Jobworker_V1_ResourceLimits.with { $0.memoryBytes = 1 << 62 }, "memory"),
                (.with { $0.memoryBytes = capacity.memoryBytes + 4096 }, "memory"),
                (.with { $0.cpuMillis = 1_000_000_000 }, "cpu"),
                (.with { $0.cpuMillis = capacity.cpuMillis + 1 }, "cpu"),
                (.with { $0.memoryBytes = 120 }, "memory"), (.with { $0.maxProcesses = 1 }, "max processes"),
                (.with { $0.cpuMillis = 9 }, "cpu"),
            ] {
                do {
                    _ = try await client.startJob(
                        .with {
                            $0.command = "/bin/true"
                            $0.limits = limits
                        }, metadata: Caller.alice.metadata)
                    Issue.record("\(limits) was accepted")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument, "\(error)")
                    #expect(error.message.contains("\(named) limit"), "\(error.message)")
                    #expect(
                        error.message.contains("ceiling") || error.message.contains("minimum"), "\(error.message)")
                }
            }
        }
    }
}

/// A TCP connection to the local port that sends nothing.
func connectTCP(port: Int) throws -> Int32 {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard socket >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard result == 0 else {
        close(socket)
        throw POSIXError(.init(rawValue: errno) ?? .EIO)
    }
    return socket
}

/// Waits (poll, no busy loop) until each socket reads end-of-file or fails; returns how many
/// did within `limit`.
func waitForEndOfFile(_ sockets: [Int32], within limit: Duration) throws -> Int {
    let deadline = ContinuousClock.now + limit
    var pending = Set(sockets)
    var buffer = [UInt8](repeating: 0, count: 64)
    while !pending.isEmpty {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { break }
        var descriptors = pending.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let milliseconds = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&descriptors, nfds_t(descriptors.count), max(1, milliseconds)) >= 0 else {
            if errno == EINTR { continue }
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        for descriptor in descriptors where descriptor.revents != 0 {
            if recv(descriptor.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) <= 0 { pending.remove(descriptor.fd) }
        }
    }
    return sockets.count - pending.count
}

/// Raises this process's soft descriptor limit to at least `count`.
func raiseDescriptorLimit(to count: rlim_t) throws {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    guard limit.rlim_cur < count else { return }
    limit.rlim_cur = min(count, limit.rlim_max)
    guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur >= count else {
        throw POSIXError(.EMFILE)
    }
}

/// A count several tasks add to.
final class Tally: Sendable {
    private let value = Atomic<Int>(0)

    var count: Int { value.load(ordering: .relaxed) }

    func add() { value.add(1, ordering: .relaxed) }
}
