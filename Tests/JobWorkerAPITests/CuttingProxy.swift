import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback TCP proxy that cuts its first connection after the server has sent `cutAfter`
/// bytes through it (or when `cut()` is called), and relays every later connection whole: a
/// connection that drops in the middle of a stream, with TLS untouched end to end.
final class CuttingProxy: Sendable {
    let port: Int
    private let listener: Int32
    private let upstreamPort: Int
    private let cutAfter: Int
    private let connections = Mutex(0)
    private let open = Mutex<[SocketPair]>([])
    private let closed: AsyncStream<Void>
    private let closedContinuation: AsyncStream<Void>.Continuation

    init(upstreamPort: Int, cutAfter: Int = .max) throws {
        self.upstreamPort = upstreamPort
        self.cutAfter = cutAfter
        (closed, closedContinuation) = AsyncStream<Void>.makeStream()
        let (listener, port) = try bindLoopbackSocket(listening: true)
        self.listener = listener
        self.port = port
        Thread.detachNewThread { [self] in acceptConnections() }
    }

    /// Stops accepting (the accept thread ends with an error).
    func close() {
        shutdown(listener, Int32(SHUT_RDWR))
    }

    /// Returns once a relayed connection has been closed on both sides (its sockets are gone).
    func waitUntilClosed() async {
        var iterator = closed.makeAsyncIterator()
        await iterator.next()
    }

    /// Drops every open connection now, as a network failure would: no TLS alert, no HTTP/2
    /// frame, just the end of the TCP stream. The proxy stops accepting first, so a client that
    /// reconnects at once is refused rather than let through.
    func cut() {
        close()
        for pair in open.withLock({ $0 }) { pair.shutDown() }
    }

    private func acceptConnections() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            guard let upstream = connectLoopback(port: upstreamPort) else {
                Glibc.close(client)
                continue
            }
            let isFirst = connections.withLock { count in
                count += 1
                return count == 1
            }
            let limit = isFirst ? cutAfter : Int.max
            let pair = SocketPair(client, upstream, onClose: closedContinuation)
            open.withLock { $0.append(pair) }
            Thread.detachNewThread { relay(from: client, to: upstream, limit: .max, pair: pair) }
            Thread.detachNewThread { relay(from: upstream, to: client, limit: limit, pair: pair) }
        }
    }
}

/// The two sockets of a relayed connection, closed by whichever direction finishes last.
private final class SocketPair: Sendable {
    private let sockets: (Int32, Int32)
    private let running = Mutex(2)
    private let onClose: AsyncStream<Void>.Continuation

    init(_ first: Int32, _ second: Int32, onClose: AsyncStream<Void>.Continuation) {
        sockets = (first, second)
        self.onClose = onClose
    }

    /// Ends both directions; the relays then finish and the last one closes the sockets.
    func shutDown() {
        running.withLock { count in
            guard count > 0 else { return }
            shutdown(sockets.0, Int32(SHUT_RDWR))
            shutdown(sockets.1, Int32(SHUT_RDWR))
        }
    }

    func finished() {
        let last = running.withLock { count in
            count -= 1
            return count == 0
        }
        if last {
            Glibc.close(sockets.0)
            Glibc.close(sockets.1)
            onClose.yield()
        }
    }
}

/// Copies bytes until EOF, an error or `limit` bytes; then shuts both sockets down, which ends
/// the other direction too.
private func relay(from source: Int32, to destination: Int32, limit: Int, pair: SocketPair) {
    defer { pair.finished() }
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    var relayed = 0
    while relayed < limit {
        let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, min($0.count, limit - relayed)) }
        guard count > 0 else { break }
        var written = 0
        while written < count {
            let result = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + written, count - written) }
            guard result > 0 else { break }
            written += result
        }
        relayed += count
    }
    shutdown(source, Int32(SHUT_RDWR))
    shutdown(destination, Int32(SHUT_RDWR))
}
