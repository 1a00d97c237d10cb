import GRPCCore
import Synchronization

/// `grpc.health.v1.Health` on the API port, for load balancers, probes and `grpc_health_probe`:
/// the server (`""`) and `jobworker.v1.JobWorker` are SERVING once the jobs of a previous run are
/// adopted and the listener is up, NOT_SERVING before and while the server drains.
///
/// Any client that passed the TLS handshake (a certificate of the client CA) may ask, whatever
/// its role: it says nothing about jobs. Calls are not audited one by one (a probe every second
/// would drown the audit trail); `checks` counts them.
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    public let phase: ServerPhase
    private let counter = CallCounter()

    /// The services whose health is reported: the whole server, and the job API.
    public static let services: Set<String> = ["", Jobworker_V1_JobWorker.descriptor.fullyQualifiedService]

    public init(phase: ServerPhase) {
        self.phase = phase
    }

    /// Health calls (Check and Watch) since the server started.
    public var checks: Int { counter.calls.load(ordering: .relaxed) }

    public func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws
        -> Grpc_Health_V1_HealthCheckResponse
    {
        counter.calls.add(1, ordering: .relaxed)
        guard Self.services.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service \(EscapedText.quoted(request.service))")
        }
        return .with { $0.status = Self.status(phase.current) }
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        counter.calls.add(1, ordering: .relaxed)
        guard Self.services.contains(request.service) else {
            // As the protocol asks: say so, and keep the stream open (the client may wait for it).
            try await response.write(.with { $0.status = .serviceUnknown })
            try await phase.bound(context) {
                try await context.cancellation.cancelled
                throw CancellationError()
            }
            return
        }
        // Not ended by the drain itself: the watcher is told NOT_SERVING first, then the end.
        try await phase.bound(context, endingAtDrain: false) {
            for await phase in self.phase.updates() {
                try await response.write(.with { $0.status = Self.status(phase) })
                if phase == .draining {
                    throw RPCError(code: .unavailable, message: "the server is shutting down")
                }
            }
        }
    }

    private static func status(_ phase: ServerPhase.Phase) -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        phase == .serving ? .serving : .notServing
    }
}

private final class CallCounter: Sendable {
    let calls = Atomic<Int>(0)
}
