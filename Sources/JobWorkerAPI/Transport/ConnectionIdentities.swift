import GRPCCore
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization
import X509

/// The identity of each open connection, resolved once, when its TLS handshake completes, from
/// the verified client certificate, and reused by every RPC on it.
///
/// Keyed by the connection itself: each connection gets a random token when it is accepted,
/// `ConnectionTagger` adds it to every request that arrives on the connection, and an RPC finds
/// its identity by the token its own request carries. An address string (all gRPC tells a stream
/// of its connection) can be reused by a closed and re-opened connection; the token cannot.
///
/// Also the count of open authenticated connections, for an orderly shutdown and tests.
final class ConnectionIdentities: Sendable {
    private struct State {
        var entries: [String: Result<Identity, IdentityRefusal>] = [:]
        var nextWaiterID = 0
        var waiters: [Int: (limit: Int, continuation: CheckedContinuation<Void, Never>)] = [:]

        /// Removes and returns the waiters whose limit the count now meets.
        mutating func takeSatisfiedWaiters() -> [CheckedContinuation<Void, Never>] {
            let satisfied = waiters.filter { $0.value.limit >= entries.count }
            for id in satisfied.keys { waiters[id] = nil }
            return satisfied.values.map(\.continuation)
        }
    }

    private let state = Mutex(State())

    /// The identity (or the refusal) of the connection with `token`.
    func identity(forToken token: String) -> Result<Identity, IdentityRefusal>? {
        state.withLock { $0.entries[token] }
    }

    /// A new connection's token: 128 random bits, in hex.
    static func makeToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(generator.next() as UInt64, radix: 16).leftPadded(to: 16) }.joined()
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Returns once at most `limit` connections are open (or the task is cancelled).
    func waitUntilCount(atMost limit: Int) async {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.entries.count <= limit || Task.isCancelled { return true }
                    state.waiters[id] = (limit, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    fileprivate func record(_ identity: Result<Identity, IdentityRefusal>, token: String) {
        state.withLock { $0.entries[token] = identity }
    }

    fileprivate func forget(_ token: String) {
        let satisfied = state.withLock { state in
            state.entries[token] = nil
            return state.takeSatisfiedWaiters()
        }
        for waiter in satisfied { waiter.resume() }
    }
}

/// Sits after `NIOSSLServerHandler`: resolves the peer's (already verified) certificate to an
/// identity once the handshake has completed, under the connection's token, and forgets it when
/// the connection closes.
final class ConnectionIdentityRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let registry: ConnectionIdentities
    private let token: String
    private var recorded = false

    init(registry: ConnectionIdentities, token: String) {
        self.registry = registry
        self.token = token
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event,
            let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
            let presented = handler.peerCertificate
        {
            let identity: Result<Identity, IdentityRefusal>
            if let certificate = try? Certificate(derEncoded: try presented.toDERBytes()) {
                identity = Identity.validated(from: certificate)
            } else {
                identity = .failure(IdentityRefusal("the client certificate could not be read"))
            }
            registry.record(identity, token: token)
            recorded = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if recorded { registry.forget(token) }
        context.fireChannelInactive()
    }
}

/// The server's identity resolver: the identity resolved from the verified client certificate
/// of the connection the request came on (`TLSServerTransport.identityResolver`).
public struct CertificateIdentityResolver: IdentityResolver {
    let registry: ConnectionIdentities

    public func identity(of context: ServerContext, metadata: Metadata) -> Result<Identity, IdentityRefusal> {
        // The tagger adds exactly one, after everything the client sent; a request that carries
        // others has tried to name a connection itself.
        let tokens = Array(metadata[stringValues: ConnectionTagger.headerName])
        guard tokens.count == 1, let identity = registry.identity(forToken: tokens[0]) else {
            return .failure(
                IdentityRefusal(
                    tokens.count > 1
                        ? "the request carries a \(ConnectionTagger.headerName) header of its own"
                        : "a client certificate is required"))
        }
        return identity
    }
}
