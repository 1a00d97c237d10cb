import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOSSL

/// A client's certificate, key and the CA it trusts for the server, as PEM text.
public struct ClientCredentials: Sendable {
    public var certificateChainPEM: String
    public var privateKeyPEM: String
    /// The only CA the server's certificate may chain to (the system store is never used).
    public var serverCAPEM: String

    public init(certificateChainPEM: String, privateKeyPEM: String, serverCAPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.serverCAPEM = serverCAPEM
    }
}

/// The client side of the API's transport: HTTP/2 over TLS 1.3 only, with a client certificate,
/// verifying the server's certificate chain against `serverCAPEM` and its name against the host
/// dialled (a DNS SAN for a name, an IP SAN for an address).
///
/// grpc-swift-nio-transport's own TLS client accepts TLS 1.2, so the transport runs with
/// `.customSecure` and this file adds NIOSSL's handler, configured for TLS 1.3 only, in front
/// of the pipeline of every connection it makes.
public enum TLSClientTransport {
    /// The transport's defaults with two changes, measured on two cores (BENCHMARKS.md).
    ///
    /// - The server may send HTTP/2 frames of up to 128 KiB (the default is 16 KiB), the size of
    ///   its output chunks: 16 KiB frames cost most of the throughput in per-frame work; 256 KiB
    ///   and 1 MiB frames measured the same as 128 KiB once `HTTP2ReadAligner` was in place.
    /// - Every flush goes out at once, as on the server (`TLSServerTransport.defaultConfig`): a
    ///   request is one small write that nothing else follows, and the transport's default
    ///   held it for up to 100 µs before sending.
    public static var defaultConfig: HTTP2ClientTransport.Posix.Config {
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.http2.maxFrameSize = 1 << 17
        config.connection.flushCoalescing = nil
        return config
    }

    /// A transport to `address`.
    public static func make(
        to address: HostAndPort, credentials: ClientCredentials,
        config: HTTP2ClientTransport.Posix.Config = defaultConfig
    ) throws -> HTTP2ClientTransport.Posix {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv13
        tls.certificateVerification = .fullVerification
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(credentials.serverCAPEM.utf8)))
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(credentials.certificateChainPEM.utf8))
            .map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(credentials.privateKeyPEM.utf8), format: .pem))
        tls.applicationProtocols = ["grpc-exp", "h2"]
        let context = try NIOSSLContext(configuration: tls)

        let family = address.ipAddressFamily
        // Names go out as SNI and are matched against DNS SANs; NIOSSL matches an address
        // (no SNI allowed) against the IP SANs of the certificate instead.
        let serverName = family == nil ? address.host : nil
        var config = config
        let maximumFrameSize = config.http2.maxFrameSize
        let previous = config.channelDebuggingCallbacks.onCreateTCPConnection
        config.channelDebuggingCallbacks.onCreateTCPConnection = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers(
                    [
                        try NIOSSLClientHandler(context: context, serverHostname: serverName),
                        HTTP2ReadAligner(maximumFrameSize: maximumFrameSize),
                    ], position: .first)
            }.flatMap {
                previous?(channel) ?? channel.eventLoop.makeSucceededVoidFuture()
            }
        }
        let target: any ResolvableTarget =
            switch family {
            case .v4: .ipv4(address: address.host, port: address.port)
            case .v6: .ipv6(address: address.host, port: address.port)
            case nil: .dns(host: address.host, port: address.port)
            }
        return try HTTP2ClientTransport.Posix(target: target, transportSecurity: .customSecure, config: config)
    }
}
