import GRPCCore
import Metrics
import Synchronization

/// Counts every call by method and status code, and times it (a stream: until its last message),
/// through swift-metrics. Method names come from the server's own descriptors and codes from
/// gRPC's fixed set, so the labels stay few whatever clients send. Put it first: refused calls
/// count too.
public struct RPCMetricsInterceptor: ServerInterceptor {
    private let handles = MetricHandles()

    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let began = ContinuousClock.now
        let method = context.descriptor.fullyQualifiedMethod
        let handles = handles
        var response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            handles.record(method, error, since: began)
            throw error
        }
        switch response.accepted {
        case .failure(let error):
            handles.record(method, error, since: began)
        case .success(var contents):
            let produce = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await produce(writer)
                    handles.record(method, nil, since: began)
                    return trailers
                } catch {
                    handles.record(method, error, since: began)
                    throw error
                }
            }
            response.accepted = .success(contents)
        }
        return response
    }
}

/// The histogram buckets of the server's timers, for whichever backend the process bootstraps:
/// from 250 µs (a status call) to 5 s (a start on a loaded host).
public enum MetricBuckets {
    public static let durations: [String: [Duration]] = {
        let buckets: [Duration] = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(5),
        ]
        return [
            "jobworker_job_start_duration_seconds": buckets, "jobworker_rpc_duration_seconds": buckets,
            "jobworker_store_write_duration_seconds": buckets,
        ]
    }()
}

/// The counters and timers of each method and code, made once each.
private final class MetricHandles: Sendable {
    private struct Key: Hashable {
        var method: String
        var code: String
    }

    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[String: Timer]>([:])

    func record(_ method: String, _ error: (any Error)?, since began: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - began
        let code: String
        switch error {
        case nil: code = "ok"
        case let error as RPCError: code = "\(error.code)"
        case let error as any RPCErrorConvertible: code = "\(error.rpcErrorCode)"
        default: code = "unknown"
        }
        let key = Key(method: method, code: code)
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: "jobworker_rpcs_total", dimensions: [("method", method), ("code", code)])
            counters[key] = counter
            return counter
        }
        counter.increment()
        let timer = timers.withLock { timers in
            if let timer = timers[method] { return timer }
            let timer = Timer(label: "jobworker_rpc_duration_seconds", dimensions: [("method", method)])
            timers[method] = timer
            return timer
        }
        timer.record(duration: elapsed)
    }
}
