import GRPCCore
import Synchronization

/// How long the server itself takes for each call of one method: from the interceptor (the
/// request read and decoded) to the end of the response (written to the transport). Beside a
/// client's round trip, it tells the server's share of a latency from the client's and the
/// host's scheduling.
final class ServerLatencyInterceptor: ServerInterceptor, Sendable {
    let method: MethodDescriptor
    private let samples = Mutex<[Duration]>([])

    init(method: MethodDescriptor) {
        self.method = method
    }

    /// The samples so far, and none kept.
    func take() -> Samples {
        Samples(
            values: samples.withLock { samples in
                defer { samples.removeAll() }
                return samples
            })
    }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard context.descriptor == method else { return try await next(request, context) }
        let began = ContinuousClock.now
        var response = try await next(request, context)
        guard case .success(var contents) = response.accepted else { return response }
        let produce = contents.producer
        contents.producer = { writer in
            let trailers = try await produce(writer)
            let elapsed = ContinuousClock.now - began
            self.samples.withLock { $0.append(elapsed) }
            return trailers
        }
        response.accepted = .success(contents)
        return response
    }
}
