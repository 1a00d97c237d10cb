import GRPCCore
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization
import X509

/// The identity of each open connection, resolved once, when its TLS handshake completes, from
/// the verified client certificate, and reused by every RPC on it.
///
/// gRPC gives an RPC its connection only as the peer address string in `ServerContext.remotePeer`
/// ("ipv4:127.0.0.1:PORT"), so that is the key; each entry also holds a number unique to its
/// connection. A connection forgets only its own entry: when a client closes one connection and
/// opens another from the same port before the old one's close has been processed, the new
/// connection's identity replaces the old one's and the old close leaves it be. The kernel never
/// has two open connections with the same addresses, so while an RPC's connection is open, its
/// key finds that connection's entry.
///
/// Also the count of open authenticated connections, for an orderly shutdown and tests.
final class ConnectionIdentities: Sendable {
    private struct Entry {
        var connection: UInt64
        var identity: Result<Identity, IdentityRefusal>
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var nextConnection: UInt64 = 0
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

    /// The identity (or the refusal) of the connection whose peer is `peer`.
    func identity(for peer: String) -> Result<Identity, IdentityRefusal>? {
        state.withLock { $0.entries[peer]?.identity }
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

    /// Records a connection's identity; returns the number that identifies its entry.
    fileprivate func record(_ identity: Result<Identity, IdentityRefusal>, for peer: String) -> UInt64 {
        state.withLock { state in
            state.nextConnection += 1
            state.entries[peer] = Entry(connection: state.nextConnection, identity: identity)
            return state.nextConnection
        }
    }

    /// Forgets connection `connection`'s entry, if `peer` still names it.
    fileprivate func forget(_ peer: String, connection: UInt64) {
        let satisfied = state.withLock { state in
            if state.entries[peer]?.connection == connection { state.entries[peer] = nil }
            return state.takeSatisfiedWaiters()
        }
        for waiter in satisfied { waiter.resume() }
    }

    /// The key of a connection, in the form gRPC gives `ServerContext.remotePeer`.
    static func key(for address: SocketAddress?) -> String? {
        switch address {
        case .v4(let address)?: "ipv4:\(address.host):\(address.address.sin_port.bigEndian)"
        case .v6(let address)?: "ipv6:[\(address.host)]:\(address.address.sin6_port.bigEndian)"
        default: nil
        }
    }
}

/// Sits after `NIOSSLServerHandler`: resolves the peer's (already verified) certificate to an
/// identity once the handshake has completed, and forgets it when the connection closes.
final class ConnectionIdentityRecorder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    private let registry: ConnectionIdentities
    private var entry: (peer: String, connection: UInt64)?

    init(registry: ConnectionIdentities) {
        self.registry = registry
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event,
            let peer = ConnectionIdentities.key(for: context.channel.remoteAddress),
            let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
            let presented = handler.peerCertificate
        {
            let identity: Result<Identity, IdentityRefusal>
            if let certificate = try? Certificate(derEncoded: try presented.toDERBytes()) {
                identity = Identity.validated(from: certificate)
            } else {
                identity = .failure(IdentityRefusal("the client certificate could not be read"))
            }
            entry = (peer, registry.record(identity, for: peer))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let entry { registry.forget(entry.peer, connection: entry.connection) }
        context.fireChannelInactive()
    }
}

/// What handlers find in `ServerContext.transportSpecific` before authorization: the identity
/// of the connection, or why it has none.
public struct ConnectionIdentity: ServerContext.TransportSpecific {
    public let identity: Result<Identity, IdentityRefusal>
}

/// The server's identity resolver: the identity resolved from the connection's verified client
/// certificate at its handshake.
public struct CertificateIdentityResolver: IdentityResolver {
    public init() {}

    public func identity(of context: ServerContext, metadata: Metadata) -> Result<Identity, IdentityRefusal> {
        (context.transportSpecific as? ConnectionIdentity)?.identity
            ?? .failure(IdentityRefusal("a client certificate is required"))
    }
}
