import GRPCCore
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization
import X509

/// The verified client certificate of each open connection, by the connection's peer address in
/// the form gRPC reports it in `ServerContext.remotePeer` ("ipv4:127.0.0.1:PORT",
/// "ipv6:[::1]:PORT"). Filled when a TLS handshake completes, emptied when the connection closes
/// (after its socket is closed), which also makes it the count of open authenticated connections.
final class PeerCertificates: Sendable {
    private struct State {
        var certificates: [String: Certificate] = [:]
        var nextWaiterID = 0
        var waiters: [Int: (limit: Int, continuation: CheckedContinuation<Void, Never>)] = [:]

        /// Removes and returns the waiters whose limit the count now meets.
        mutating func takeSatisfiedWaiters() -> [CheckedContinuation<Void, Never>] {
            let satisfied = waiters.filter { $0.value.limit >= certificates.count }
            for id in satisfied.keys { waiters[id] = nil }
            return satisfied.values.map(\.continuation)
        }
    }

    private let state = Mutex(State())

    func certificate(for peer: String) -> Certificate? {
        state.withLock { $0.certificates[peer] }
    }

    var count: Int { state.withLock { $0.certificates.count } }

    /// Returns once at most `limit` connections are open (or the task is cancelled).
    func waitUntilCount(atMost limit: Int) async {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.certificates.count <= limit || Task.isCancelled { return true }
                    state.waiters[id] = (limit, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    fileprivate func record(_ certificate: Certificate, for peer: String) {
        state.withLock { $0.certificates[peer] = certificate }
    }

    fileprivate func forget(_ peer: String) {
        let satisfied = state.withLock { state in
            state.certificates.removeValue(forKey: peer)
            return state.takeSatisfiedWaiters()
        }
        for waiter in satisfied { waiter.resume() }
    }

    static func key(for address: SocketAddress?) -> String? {
        switch address {
        case .v4(let address)?: "ipv4:\(address.host):\(address.address.sin_port.bigEndian)"
        case .v6(let address)?: "ipv6:[\(address.host)]:\(address.address.sin6_port.bigEndian)"
        default: nil
        }
    }
}

/// Sits after `NIOSSLServerHandler`: records the peer's (already verified) certificate once the
/// handshake has completed, and forgets it when the connection closes.
final class PeerCertificateRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let registry: PeerCertificates
    private var key: String?

    init(registry: PeerCertificates) {
        self.registry = registry
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event,
            let key = PeerCertificates.key(for: context.channel.remoteAddress),
            let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
            let peer = handler.peerCertificate,
            let certificate = try? Certificate(derEncoded: try peer.toDERBytes())
        {
            self.key = key
            registry.record(certificate, for: key)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let key { registry.forget(key) }
        context.fireChannelInactive()
    }
}

/// What handlers find in `ServerContext.transportSpecific` before authorization: the verified
/// client certificate of the connection.
public struct PeerCertificate: ServerContext.TransportSpecific {
    public let certificate: Certificate
}

/// The server's identity resolver: the Subject CN and OU of the verified client certificate.
public struct CertificateIdentityResolver: IdentityResolver {
    public init() {}

    public func identity(of context: ServerContext, metadata: Metadata) -> Identity? {
        (context.transportSpecific as? PeerCertificate).flatMap { Identity(certificate: $0.certificate) }
    }
}
