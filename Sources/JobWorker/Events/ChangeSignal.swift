import Synchronization

/// A generation counter that tasks can wait on without polling.
///
/// A waiter reads `snapshot`, does its work (e.g. reads to the end of a file), and if there was
/// nothing to do calls `wait(whileGenerationIs:)` with the generation it saw. A `signal()` that
/// happened in between makes the wait return at once, so no change is ever missed. `close()` is a
/// final signal: every current and future wait returns. Cancelling a waiting task resumes it at
/// once and forgets it.
final class ChangeSignal: Sendable {
    struct Snapshot: Sendable {
        let generation: UInt64
        let isClosed: Bool
    }

    fileprivate struct State {
        var generation: UInt64 = 0
        var isClosed = false
        var nextWaiterID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    var snapshot: Snapshot {
        state.withLock { Snapshot(generation: $0.generation, isClosed: $0.isClosed) }
    }

    /// Advances the generation and wakes every waiter.
    func signal() {
        let waiters = state.withLock { state in
            state.generation &+= 1
            return state.takeWaiters()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Wakes every waiter for good: later waits return immediately.
    func close() {
        let waiters = state.withLock { state in
            state.generation &+= 1
            state.isClosed = true
            return state.takeWaiters()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the generation differs from `generation`, the signal is closed, or the task
    /// is cancelled (check `Task.isCancelled` afterwards).
    func wait(whileGenerationIs generation: UInt64) async {
        let id = state.withLock { state in
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    // Cancellation sets the flag before running the handler, and the handler takes
                    // this lock: either we see the flag here, or the handler finds the waiter.
                    if state.isClosed || state.generation != generation || Task.isCancelled {
                        return true
                    }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Returns once the signal is closed, or the task is cancelled.
    func waitUntilClosed() async {
        while !Task.isCancelled {
            let current = snapshot
            if current.isClosed { return }
            await wait(whileGenerationIs: current.generation)
        }
    }
}

extension ChangeSignal.State {
    fileprivate mutating func takeWaiters() -> [CheckedContinuation<Void, Never>] {
        defer { waiters.removeAll(keepingCapacity: false) }
        return Array(waiters.values)
    }
}
