import Foundation
import JobWorkerAPI
import NIOCore
import NIOHTTP1
import NIOPosix

/// The operations listener: plain HTTP on its own address (`--ops-listen`, loopback by default),
/// for what probes and Prometheus expect to find without a client certificate:
///
/// - `GET /healthz`: 200 while the process serves (liveness).
/// - `GET /readyz`: 200 while the health status is SERVING, else 503 with the reason (readiness).
/// - `GET /metrics`: the Prometheus text format.
///
/// Nothing here names a job or an owner, and nothing changes anything.
struct OperationsListener {
    let host: String
    let port: Int
    let phase: ServerPhase
    let metrics: MetricsExposition

    /// Binds and serves until the returned channel is closed.
    func start() async throws -> any Channel {
        let (phase, metrics) = (phase, metrics)
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        OperationsHandler(phase: phase, metrics: metrics))
                }
            }
            .bind(host: host, port: port).get()
    }

    /// The answer to `method path`.
    static func answer(method: HTTPMethod, path: String, phase: ServerPhase, metrics: MetricsExposition) -> (
        HTTPResponseStatus, String, String
    ) {
        guard method == .GET || method == .HEAD else {
            return (.methodNotAllowed, "text/plain", "only GET\n")
        }
        switch path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path {
        case "/healthz":
            return (.ok, "text/plain", "ok\n")
        case "/readyz":
            switch phase.current {
            case .serving: return (.ok, "text/plain", "ready\n")
            case .starting:
                return (.serviceUnavailable, "text/plain", "starting: adopting the jobs of the previous run\n")
            case .draining: return (.serviceUnavailable, "text/plain", "draining: shutting down\n")
            }
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
        default:
            return (.notFound, "text/plain", "no such page: /healthz, /readyz and /metrics\n")
        }
    }
}

/// One request at a time per connection, each answered whole; the body of a request is ignored.
private final class OperationsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let phase: ServerPhase
    private let metrics: MetricsExposition
    private var head: HTTPRequestHead?

    init(phase: ServerPhase, metrics: MetricsExposition) {
        self.phase = phase
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            let (status, type, body) = OperationsListener.answer(
                method: request.method, path: request.uri, phase: phase, metrics: metrics)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                promise: nil)
            if request.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            }
            let keepAlive = request.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}
