import Synchronization

/// A generation counter that tasks can wait on without polling.
///
/// A waiter reads `snapshot`, does its work (e.g. reads to the end of a file), and if there was
/// nothing to do calls `wait(whileGenerationIs:)` with the generation it saw. A `signal()` that
/// happened in between makes the wait return at once, so no change is ever missed. `finish()` is a
/// final signal: every current and future wait returns. Cancelling a waiting task resumes it at
/// once and forgets it.
final class ChangeSignal: Sendable {
    struct Snapshot: Sendable {
        let generation: UInt64
        let isFinished: Bool
    }

    fileprivate struct State {
        var generation: UInt64 = 0
        var isFinished = false
        var nextWaiterID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    var snapshot: Snapshot {
        state.withLock { Snapshot(generation: $0.generation, isFinished: $0.isFinished) }
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
    func finish() {
        let waiters = state.withLock { state in
            state.generation &+= 1
            state.isFinished = true
            return state.takeWaiters()
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the generation differs from `generation`, the signal has finished, or the task
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
                    if state.isFinished || state.generation != generation || Task.isCancelled {
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

    /// Returns once the signal has finished, or the task is cancelled.
    func waitUntilFinished() async {
        while !Task.isCancelled {
            let current = snapshot
            if current.isFinished { return }
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
