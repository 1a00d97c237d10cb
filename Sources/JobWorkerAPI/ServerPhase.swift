import Synchronization

/// Where the server is in its life, as its clients see it: starting (adopting the jobs of a
/// previous run), serving, or draining (shutting down). The health service reports it, and long
/// calls end when draining begins, so that a shutdown never waits on a client.
public final class ServerPhase: Sendable {
    public enum Phase: Sendable, Hashable {
        case starting
        case serving
        case draining
    }

    private struct State {
        var phase = Phase.starting
        var nextWatcherID = 0
        var watchers: [Int: AsyncStream<Phase>.Continuation] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var current: Phase { state.withLock { $0.phase } }

    /// Adoption is done and the listener is up.
    public func beginServing() { move(to: .serving) }

    /// The server is shutting down: from now on it is not serving, and long calls end.
    public func beginDraining() { move(to: .draining) }

    private func move(to phase: Phase) {
        state.withLock { state in
            // Draining is final: a late "serving" (a listener that came up during a shutdown)
            // does not undo it.
            guard state.phase != phase, state.phase != .draining else { return }
            state.phase = phase
            for watcher in state.watchers.values { watcher.yield(phase) }
        }
    }

    /// The phase now, then each new one; a reader that falls behind gets only the latest.
    func updates() -> AsyncStream<Phase> {
        let (stream, continuation) = AsyncStream.makeStream(of: Phase.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            defer { state.nextWatcherID += 1 }
            continuation.yield(state.phase)
            state.watchers[state.nextWatcherID] = continuation
            return state.nextWatcherID
        }
        continuation.onTermination = { [weak self] _ in
            // Dropped outside the lock: the last reference to a stream may go with it.
            let removed = self?.state.withLock { $0.watchers.removeValue(forKey: id) }
            _ = removed
        }
        return stream
    }

    /// Returns the phase after starting (serving, or draining: a shutdown during the start), or
    /// `starting` if the task is cancelled first.
    public func waitUntilStarted() async -> Phase {
        for await phase in updates() where phase != .starting { return phase }
        return .starting
    }

    /// Returns once draining has begun, or the task is cancelled.
    public func waitUntilDraining() async {
        for await phase in updates() where phase == .draining { return }
    }
}
