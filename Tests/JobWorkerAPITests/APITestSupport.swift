import Foundation
import GRPCCore
import GRPCInProcessTransport
import JobWorker
import JobWorkerAPI
import JobWorkerTestPrograms
import Logging
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Identities for tests over the in-process transport, which has no certificates: read from a
/// request header that only this test resolver trusts (the server's resolver reads the verified
/// client certificate and never looks at headers).
struct HeaderIdentityResolver: IdentityResolver {
    static let header = "x-test-identity"

    func identity(of context: ServerContext, metadata: Metadata) -> Result<Identity, IdentityRefusal> {
        let refusal = IdentityRefusal("a client certificate is required")
        guard let value = metadata[stringValues: Self.header].first(where: { _ in true }) else {
            return .failure(refusal)
        }
        let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return .failure(refusal) }
        return .success(Identity(name: parts[0], role: Role(rawValue: parts[1])))
    }
}

/// A caller, as the tests' resolver sees it.
struct Caller: Sendable, Hashable, CustomStringConvertible {
    var name: String
    var role: String

    var metadata: Metadata { [HeaderIdentityResolver.header: "\(name):\(role)"] }
    var description: String { "\(name) (\(role))" }

    static let admin = Caller(name: "root-admin", role: "admin")
    static let alice = Caller(name: "alice", role: "user")
    static let bob = Caller(name: "bob", role: "user")
    static let viewer = Caller(name: "vera", role: "viewer")
    static let stranger = Caller(name: "sam", role: "operator")
}

/// Where the build put the test binary, jobworkerd, jobctl and the test helper.
let buildDirectory = TestPrograms.buildDirectory

/// The test helper program, as a copy that the jobs' user may run.
let helperPath = TestPrograms.helperPath

let canUseCgroups = geteuid() == 0 || ProcessInfo.processInfo.environment["CI"] == "true"

/// Runs `body` with a client of a real `JobWorkerService` over the in-process transport, with the
/// authorization interceptor in front of it.
func withAPI<Result: Sendable>(
    auditLogger: Logger? = nil,
    configure: (inout WorkerConfiguration) -> Void = { _ in },
    _ body: (Jobworker_V1_JobWorker.Client<InProcessTransport.Client>) async throws -> Result
) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("jobworker-api-test-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var configuration = WorkerConfiguration(stateDirectory: directory)
    configuration.resourceControl = canUseCgroups ? .cgroups : .disabled
    configuration.isolation = canUseCgroups ? .namespaces : .none
    configuration.cgroupParentName = "jobworker-api-test-\(JobID().shortDescription)"
    if geteuid() != 0 { configuration.jobUsers = .worker }  // only root may start jobs as another user
    configure(&configuration)
    let worker = try await Worker(configuration: configuration)
    let service = JobWorkerService(worker: worker)
    let transport = InProcessTransport()
    do {
        let result = try await withGRPCServer(
            transport: transport.server, services: [service],
            interceptors: (auditLogger.map { [AuditInterceptor(logger: $0, resolver: HeaderIdentityResolver())] } ?? [])
                + [AuthorizationInterceptor(resolver: HeaderIdentityResolver())]
        ) { server in
            try await withGRPCClient(transport: transport.client) { client in
                defer { server.beginGracefulShutdown() }
                return try await body(Jobworker_V1_JobWorker.Client(wrapping: client))
            }
        }
        await worker.shutdown(gracePeriod: .zero)
        return result
    } catch {
        await worker.shutdown(gracePeriod: .zero)
        throw error
    }
}

extension Jobworker_V1_JobWorker.Client where Transport == InProcessTransport.Client {
    /// Starts the test helper in `mode` as `caller`.
    func startHelper(_ mode: String, _ arguments: String..., as caller: Caller) async throws -> Jobworker_V1_JobStatus {
        try await startJob(
            .with {
                $0.command = helperPath
                $0.args = [mode] + arguments
            }, metadata: caller.metadata
        ).status
    }

    /// The whole output of a job from `offset`, as `caller`.
    func output(of id: String, from offset: UInt64 = 0, as caller: Caller) async throws
        -> [Jobworker_V1_StreamJobOutputResponse]
    {
        try await streamJobOutput(
            .with {
                $0.id = id
                $0.offset = offset
            }, metadata: caller.metadata
        ) { response in
            var messages: [Jobworker_V1_StreamJobOutputResponse] = []
            for try await message in response.messages { messages.append(message) }
            return messages
        }
    }
}

extension Jobworker_V1_JobWorker.Client where Transport == InProcessTransport.Client {
    /// Reads the job's output until it contains `marker` (the job is then past its setup).
    func waitForOutput(of id: String, containing marker: String, as caller: Caller) async throws {
        try await streamJobOutput(.with { $0.id = id }, metadata: caller.metadata) { response in
            var text = ""
            for try await message in response.messages {
                text += String(decoding: message.data, as: UTF8.self)
                if text.contains(marker) { return }
            }
            Issue.record("the job ended without printing \(marker)")
        }
    }
}

/// The status code `body` fails with, or nil if it succeeds.
func statusCode(of body: () async throws -> Void) async -> RPCError.Code? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        Issue.record("not an RPCError: \(error)")
        return nil
    }
}

extension WorkerConfiguration {
    /// For tests that start hundreds of jobs of one owner at once: no per-owner bound.
    mutating func liftOwnerQuotas() {
        policy.maximumRunningJobsPerOwner = nil
        policy.startRatePerOwner = nil
    }
}
