import CoreMetrics
import NIOCore
import Synchronization

/// What one client, or everyone together, may hold of the server's connections.
///
/// Without these, a TCP connection that never sent a ClientHello was kept forever, and a few
/// thousand of them from anyone who could reach the port locked every client out.
public struct ConnectionLimits: Sendable, Hashable {
    /// A connection must complete its TLS handshake and send the HTTP/2 preface within this.
    public var handshakeTimeout: Duration = .seconds(10)
    /// A connection with no RPC open this long is closed (with GOAWAY). nil: never.
    public var idleTimeout: Duration? = .seconds(300)
    /// A connection this old is sent GOAWAY: it takes no new RPCs, and those open finish. nil:
    /// never.
    public var maximumAge: Duration? = .seconds(2 * 3600)
    /// After `maximumAge`, how long the RPCs open may still run before the connection closes.
    /// nil: as long as they need (a `jobctl logs -f` of a long job is not cut).
    public var maximumAgeGrace: Duration? = nil
    /// Connections open at once, in total, and from one IP address; connections beyond are
    /// closed as they are accepted.
    public var maximumConnections = 1024
    public var maximumConnectionsPerAddress = 64
    /// Concurrent RPCs on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
    public var maximumStreamsPerConnection = 100
    /// The largest request message of any method (`--max-request-bytes`): RESOURCE_EXHAUSTED
    /// beyond, with the size and the limit.
    public var maximumRequestBytes = 4 << 20

    public init() {}
}

/// How many connections and requests the server turned away, and why: for the log and for an
/// operator who wonders why a client was refused.
public final class ConnectionCounters: Sendable {
    let refusedOverTotal = Atomic<Int>(0)
    let refusedOverAddress = Atomic<Int>(0)
    let handshakeTimeouts = Atomic<Int>(0)
    let oversizedRequests = Atomic<Int>(0)

    init() {}

    /// Connections closed at accept because `maximumConnections` were open.
    public var connectionsRefusedOverTotal: Int { refusedOverTotal.load(ordering: .relaxed) }
    /// Connections closed at accept because `maximumConnectionsPerAddress` from the address were
    /// open.
    public var connectionsRefusedOverAddress: Int { refusedOverAddress.load(ordering: .relaxed) }
    /// Connections closed because they had not completed the handshake and preface in time.
    public var connectionsTimedOutInHandshake: Int { handshakeTimeouts.load(ordering: .relaxed) }
    /// Requests refused because their message was over `maximumRequestBytes`.
    public var requestsOverSizeLimit: Int { oversizedRequests.load(ordering: .relaxed) }
}

/// Counts open connections, in total and per IP address, and admits a new one only below both
/// caps. Counted from accept to close, handshake or not.
final class ConnectionAdmission: Sendable {
    private struct State {
        var total = 0
        var byAddress: [String: Int] = [:]
    }

    private let limits: ConnectionLimits
    private let counters: ConnectionCounters
    private let state = Mutex(State())

    init(limits: ConnectionLimits, counters: ConnectionCounters) {
        self.limits = limits
        self.counters = counters
    }

    /// Admits `channel` (and releases it when it closes), or returns false: the caller closes it.
    func admit(_ channel: any Channel) -> Bool {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let admitted = state.withLock { state -> Bool in
            if state.total >= limits.maximumConnections {
                counters.refusedOverTotal.add(1, ordering: .relaxed)
                return false
            }
            if state.byAddress[address, default: 0] >= limits.maximumConnectionsPerAddress {
                counters.refusedOverAddress.add(1, ordering: .relaxed)
                return false
            }
            state.total += 1
            state.byAddress[address, default: 0] += 1
            return true
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { _ in
            self.state.withLock { state in
                state.total -= 1
                let left = state.byAddress[address, default: 1] - 1
                state.byAddress[address] = left > 0 ? left : nil
            }
        }
        return true
    }
}

/// Closes a connection that has not completed its TLS handshake and sent the HTTP/2 connection
/// preface within the handshake timeout; sits after the TLS handler and removes itself once
/// both have happened.
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 §3.4).
    private static let prefaceLength = 24

    private let timeout: Duration
    private let counters: ConnectionCounters
    private var deadline: Scheduled<Void>?
    private var prefaceBytesSeen = 0

    init(timeout: Duration, counters: ConnectionCounters) {
        self.timeout = timeout
        self.counters = counters
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let counters = counters
        deadline = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            counters.handshakeTimeouts.add(1, ordering: .relaxed)
            HandshakeFailure.count(reason: "timeout")
            loopBound.value.close(promise: nil)
        }
    }

    /// Before the preface (this handler is gone after it), an error from the TLS handler is a
    /// failed handshake: counted by its reason.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        HandshakeFailure.count(reason: HandshakeFailure.reason(of: error))
        context.fireErrorCaught(error)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Decrypted bytes only arrive once the handshake has completed.
        prefaceBytesSeen += unwrapInboundIn(data).readableBytes
        context.fireChannelRead(data)
        if prefaceBytesSeen >= Self.prefaceLength {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// TLS handshakes that failed, by a reason from a fixed few (a metric label).
enum HandshakeFailure {
    static func count(reason: String) {
        Counter(label: "jobworker_tls_handshake_failures_total", dimensions: [("reason", reason)]).increment()
    }

    static func reason(of error: any Error) -> String {
        let text = String(describing: error).uppercased()
        if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") { return "no_client_certificate" }
        if text.contains("CERTIFICATE") { return "bad_certificate" }
        if text.contains("HTTP_REQUEST") || text.contains("WRONG_VERSION_NUMBER") { return "not_tls" }
        if text.contains("PROTOCOL") || text.contains("VERSION") { return "protocol_version" }
        if text.contains("UNCLEANSHUTDOWN") || text.contains("EOF") { return "closed" }
        return "other"
    }
}

extension TimeAmount {
    /// `duration`, saturating (a timeout of 200,000 days is as good as none).
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let total = nanoseconds.partialValue.addingReportingOverflow(attoseconds / 1_000_000_000)
        self = .nanoseconds(nanoseconds.overflow || total.overflow ? (seconds < 0 ? .min : .max) : total.partialValue)
    }
}
