import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOPosix
import NIOSSL

/// The server's gRPC transport: HTTP/2 over TLS 1.3 only, with a verified client certificate.
///
/// grpc-swift-nio-transport's Posix TLS configuration accepts TLS 1.2, so the listener is ours
/// (`HTTP2ServerTransport.Custom` with a `ListenerFactory`): NIOSSL with `minimumTLSVersion =
/// .tlsv13`, the client CA as the only trust root, client certificates required. A handler after
/// the TLS handler resolves each connection's verified certificate to an identity once, under a
/// token of the connection's own that `ConnectionTagger` adds to each of its requests;
/// `identityResolver` finds it from there. The listener also applies the `ConnectionLimits`: connection caps at accept, a
/// handshake deadline, and a receive limit answered with a status.
public final class TLSServerTransport: ServerTransport {
    public typealias Bytes = HTTP2ServerTransport.Custom<TLSListenerFactory>.Bytes

    private let transport: HTTP2ServerTransport.Custom<TLSListenerFactory>
    private let peers: ConnectionIdentities
    /// Connections and requests turned away.
    public let counters: ConnectionCounters
    /// The TLS material new connections get.
    public let credentials: ServerCredentials

    /// - Parameters:
    ///   - host: the address to listen on, e.g. "127.0.0.1".
    ///   - port: the port, 0 for one the kernel picks (see `listeningAddress`).
    ///   - certificateChainPEM, privateKeyPEM: the server's certificate (EKU serverAuth) and key.
    ///   - clientCAPEM: the only CA whose client certificates are accepted.
    ///   - limits: what clients may hold of the server's connections.
    public convenience init(
        host: String, port: Int, certificateChainPEM: String, privateKeyPEM: String, clientCAPEM: String,
        limits: ConnectionLimits = ConnectionLimits()
    ) throws {
        try self.init(
            host: host, port: port,
            credentials: ServerCredentials(
                certificateChainPEM: certificateChainPEM, privateKeyPEM: privateKeyPEM, clientCAPEM: clientCAPEM),
            limits: limits)
    }

    /// - Parameter credentials: the TLS material, which may be replaced while the server runs.
    public init(host: String, port: Int, credentials: ServerCredentials, limits: ConnectionLimits = ConnectionLimits())
    {
        let peers = ConnectionIdentities()
        let counters = ConnectionCounters()
        self.peers = peers
        self.counters = counters
        self.credentials = credentials
        transport = HTTP2ServerTransport.Custom(
            listenerFactory: TLSListenerFactory(
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton, host: host, port: port,
                credentials: credentials, peers: peers, limits: limits,
                admission: ConnectionAdmission(limits: limits, counters: counters), counters: counters),
            config: Self.config(limits))
    }

    /// The transport's defaults with these changes.
    ///
    /// - Limits on what one client can take: `limits.maximumStreamsPerConnection` concurrent
    ///   streams per connection (gRPC's default is unlimited), requests of at most
    ///   `limits.maximumRequestBytes`, the idle timeout and the maximum age.
    /// - Every flush goes out at once. The transport's default holds a small write for up to
    ///   100 µs in case more follow; this API's calls are one request and one answer, so each
    ///   answer waited out the delay (and a timer) for nothing: 0.3 ms of a 0.75 ms GetJobStatus
    ///   round trip together with the client's delay (`TLSClientTransport.defaultConfig`). Output
    ///   chunks are larger than the coalescing threshold and were flushed at once anyway.
    static func config(_ limits: ConnectionLimits) -> HTTP2ServerTransport.Custom<TLSListenerFactory>.Config {
        var config = HTTP2ServerTransport.Custom<TLSListenerFactory>.Config.defaults
        config.http2.maxConcurrentStreams = limits.maximumStreamsPerConnection
        config.rpc.maxRequestPayloadSize = limits.maximumRequestBytes
        config.connection.maxIdleTime = limits.idleTimeout
        config.connection.maxAge = limits.maximumAge
        config.connection.maxGraceTime = limits.maximumAgeGrace
        config.connection.flushCoalescing = nil
        return config
    }

    /// The bound address, once listening.
    public var listeningAddress: GRPCNIOTransportCore.SocketAddress? {
        get async { await transport.listeningAddress }
    }

    /// The resolver of the identities of this transport's connections.
    public var identityResolver: CertificateIdentityResolver { CertificateIdentityResolver(registry: peers) }

    /// How many client connections are open (TLS handshake completed, not yet closed).
    public var openConnections: Int { peers.count }

    /// Returns once at most `limit` client connections are open, their sockets closed: for an
    /// orderly shutdown, and for tests that check what a departed client left behind.
    public func waitUntilOpenConnections(atMost limit: Int) async {
        await peers.waitUntilCount(atMost: limit)
    }

    public func configure(context: GRPCServerContext) {
        transport.configure(context: context)
    }

    public func listen(
        streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
    ) async throws {
        try await transport.listen(streamHandler: streamHandler)
    }

    public func beginGracefulShutdown() {
        transport.beginGracefulShutdown()
    }
}

/// Binds the listening socket and sets up each connection: admission, TLS, its deadline, the
/// identity, the receive limit, the connection's tag on each request, HTTP/2.
public struct TLSListenerFactory: HTTP2ServerTransport.ListenerFactory {
    public let eventLoopGroup: any EventLoopGroup
    let host: String
    let port: Int
    let credentials: ServerCredentials
    let peers: ConnectionIdentities
    let limits: ConnectionLimits
    let admission: ConnectionAdmission
    let counters: ConnectionCounters

    public func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let (credentials, peers, limits, admission, counters) = (credentials, peers, limits, admission, counters)
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A burst of connections waits in the kernel's queue rather than in SYN retries
            // (NIO's default is 256; the kernel caps it at somaxconn).
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .serverChannelInitializer { channel in
                listenerConfigurator.configure(channel: channel)
            }
            .bind(host: host, port: port) { channel in
                // Over a cap, the connection is closed before a byte of TLS is spent on it. It
                // is still handed on, closed: a failed initializer would end the listener.
                let admitted = admission.admit(channel)
                return channel.eventLoop.makeCompletedFuture {
                    guard admitted else { return }
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(NIOSSLServerHandler(context: credentials.current))
                    try pipeline.addHandler(HandshakeDeadline(timeout: limits.handshakeTimeout, counters: counters))
                    let token = ConnectionIdentities.makeToken()
                    try pipeline.addHandler(ConnectionIdentityRecorder(registry: peers, token: token))
                    try pipeline.addHandler(RequestSizeGuard(limit: limits.maximumRequestBytes, counters: counters))
                    try pipeline.addHandler(ConnectionTagger(token: token))
                }.flatMap {
                    connectionConfigurator.configure(channel: channel, tls: .configured(requireALPN: false))
                }.map { connection in
                    if !admitted { channel.close(promise: nil) }
                    return connection
                }
            }
    }
}
